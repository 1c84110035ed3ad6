/// Batch normalisation with per-step weights and biases (MAML++, Antoniou et al. 2019, BNWB):
/// the scale and shift are `[steps, channels]`, and a pass at inner-loop step k
/// (``ForwardContext/innerStep``) uses row `min(k, steps - 1)`; a pass outside an inner loop
/// (the query set after adaptation, ProtoNet, `net(x)`) uses the last row, as MAML++ scores
/// its targets with the last step's weights. The statistics are the batch's (transductive),
/// as in the built-in batch norm and as MAML++'s reference code normalises in training and
/// evaluation alike, so no running statistics are kept.
public struct StepBatchNorm: LayerModule {
    public static let kind = "batchnorm_steps"
    public let channels: Int
    public let steps: Int

    public init(channels: Int, steps: Int) {
        self.channels = channels
        self.steps = steps
    }

    public func parameterSpecs(weightInit: Initializer) -> [ParameterSpec] {
        [ParameterSpec(name: "scale", shape: [steps, channels], initializer: .ones, fanIn: channels, fanOut: channels),
         ParameterSpec(name: "shift", shape: [steps, channels], initializer: .zeros, fanIn: channels, fanOut: channels)]
    }

    /// The row of the per-step parameters a pass at `step` uses.
    public func row(at step: Int?) -> Int { min(max(step ?? steps - 1, 0), steps - 1) }

    public func apply(_ x: Tensor, parameters p: ArraySlice<Tensor>, tasks: Int?) -> Tensor {
        let p = Array(p)
        let k = row(at: ForwardContext.current.innerStep)
        let normalized = x.normalized(overAxes: Array((tasks == nil ? 0 : 1)..<(x.rank - 1)))
        // [steps, C] -> [C]; per task [T, steps, C] -> [T, 1, ..., 1, C].
        func pick(_ t: Tensor) -> Tensor {
            let row = t.slice(axis: t.rank - 2, k..<k + 1)
            if let tasks, t.rank == 3 {
                return row.reshaped(to: [tasks] + Array(repeating: 1, count: x.rank - 2) + [channels])
            }
            return row.reshaped(to: [channels])
        }
        return normalized * pick(p[0]) + pick(p[1])
    }

    public func outputShape(for input: [Int]) throws(ShapeError) -> [Int] {
        guard input.last == channels else { throw ShapeError("batch norm expects \(channels) channels, got shape \(input)") }
        return input
    }

    public var sizes: [Int] { [channels, steps] }
    public var text: String { "batchnorm(\(channels), per step \(steps))" }
}
