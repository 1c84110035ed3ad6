/// Dropout (Srivastava et al. 2014), inverted: in a meta-training pass each element is zeroed
/// with probability `rate` and the others are scaled by 1 / (1 - rate); in every other pass
/// (evaluation, `adapt`, `serve`, `net(x)`) the layer is the identity.
///
/// The masks are a pure function of the meta-step's key (``ForwardContext``), the inner step,
/// the layer call's number in the pass, the task's index in the whole meta-batch and the
/// element's index in the task: the same seed gives the same masks, a resumed run draws what
/// the uninterrupted run drew, and splitting a batch across threads or processes changes
/// nothing. The mask is a constant of the graph, so gradients (of any order) pass through the
/// kept elements, scaled.
public struct Dropout: LayerModule {
    public static let kind = "dropout"
    /// The probability of zeroing an element, in 0 ..< 1.
    public let rate: Float

    public init(rate: Float) {
        precondition(Dropout.isValid(rate), "a dropout rate must be in 0 ..< 1")
        self.rate = rate
    }

    static func isValid(_ rate: Float) -> Bool { rate.isFinite && rate >= 0 && rate < 1 }

    private enum Keys: String, CodingKey { case rate }
    public init(from decoder: Decoder) throws {
        let c = try decoder.container(keyedBy: Keys.self)
        let rate = try c.decode(Float.self, forKey: .rate)
        guard Dropout.isValid(rate) else {
            throw DecodingError.dataCorruptedError(forKey: .rate, in: c, debugDescription: "a dropout rate must be in 0 ..< 1, got \(rate)")
        }
        self.rate = rate
    }
    public func encode(to encoder: Encoder) throws {
        var c = encoder.container(keyedBy: Keys.self)
        try c.encode(rate, forKey: .rate)
    }

    public func parameterSpecs(weightInit: Initializer) -> [ParameterSpec] { [] }

    public func apply(_ x: Tensor, parameters: ArraySlice<Tensor>, tasks: Int?) -> Tensor {
        guard rate > 0, let stream = ForwardContext.nextDropoutStream(), x.count > 0 else { return x }
        return x * Tensor(shape: x.shape, values: Dropout.mask(count: x.count, tasks: tasks == nil ? 1 : x.shape[0],
                                                               firstTask: ForwardContext.current.taskOffset, stream: stream, rate: rate))
    }

    /// The mask of `count` elements split evenly into `tasks` tasks, the first of which is task
    /// `firstTask` of the meta-batch: 0 or 1 / (1 - rate).
    static func mask(count: Int, tasks: Int, firstTask: Int, stream: UInt64, rate: Float) -> [Float] {
        let perTask = count / max(tasks, 1)
        let kept = 1 / (1 - rate)
        // Keep an element when its uniform draw in [0, 1), 24 bits, is at least `rate`.
        let threshold = UInt64((Double(rate) * Double(1 << 24)).rounded(.up))
        var values = [Float](repeating: 0, count: count)
        values.withUnsafeMutableBufferPointer { v in
            for t in 0..<max(tasks, 1) {
                let task = UInt64(truncatingIfNeeded: firstTask + t) &* 0xA24B_AED4_963E_E407
                for i in 0..<perTask {
                    let u = ForwardContext.mix((stream ^ task) &+ UInt64(i) &* 0x9FB2_1C65_1E98_DF25) >> 40
                    if u >= threshold { v[t * perTask + i] = kept }
                }
            }
        }
        return values
    }

    public func outputShape(for input: [Int]) throws(ShapeError) -> [Int] { input }

    public var sizes: [Int] { [] }
    public var text: String { "dropout(\(rate))" }
}
