import Foundation

/// A family of 1-D regression tasks `y = f(x; parameters)`, each task drawing its parameters
/// uniformly from ranges: the sinusoids and lines of Finn et al. (2017), or any function
/// given by the caller (the language's `regression < f fn(x, a, b) -> ... >`).
///
/// ```swift
/// let sine = RegressionTasks.sinusoid()
/// var rng = RandomGenerator(seed: 0)
/// let batch = sine.sample(tasks: 25, support: 10, query: 10, using: &rng)
/// ```
public struct RegressionTasks: TaskDistribution {
    /// Evaluates the family for all points of one task: `(x [n], parameters) -> y [n]`.
    public typealias Function = @Sendable (_ x: Tensor, _ parameters: [Float]) throws -> Tensor

    public var name: String
    public var parameterRanges: [(name: String, range: ClosedRange<Float>)]
    public var inputRange: ClosedRange<Float>
    /// The family over all points of a task. For a family given point by point it is
    /// `pointwise` applied to each point.
    public let function: Function
    /// The family as a function of one point, when it was given that way (the built-in
    /// families): sampling then evaluates it point by point instead of running tensor
    /// operations for every task.
    public let pointwise: (@Sendable (_ x: Float, _ parameters: [Float]) -> Float)?
    /// Standard deviation of Gaussian noise added to targets.
    public var noise: Float

    public var loss: LossKind { .meanSquaredError }
    public var inputShape: [Int] { [1] }
    public var outputCount: Int { 1 }

    /// A family given as tensor operations over a task's points (the language's families).
    public init(
        name: String, parameterRanges: [(name: String, range: ClosedRange<Float>)],
        inputRange: ClosedRange<Float>, noise: Float = 0, function: @escaping Function
    ) {
        self.name = name
        self.parameterRanges = parameterRanges
        self.inputRange = inputRange
        self.noise = noise
        self.pointwise = nil
        self.function = function
    }

    /// A family given as a function of one point.
    public init(
        name: String, parameterRanges: [(name: String, range: ClosedRange<Float>)],
        inputRange: ClosedRange<Float>, noise: Float = 0,
        pointwise: @escaping @Sendable (_ x: Float, _ parameters: [Float]) -> Float
    ) {
        self.name = name
        self.parameterRanges = parameterRanges
        self.inputRange = inputRange
        self.noise = noise
        self.pointwise = pointwise
        self.function = { x, p in Tensor(shape: x.shape, values: x.scalars.map { pointwise($0, p) }) }
    }

    /// `y = amplitude * sin(x - phase)`, amplitude in 0.1...5, phase in 0...pi, x in -5...5
    /// (Finn et al. 2017).
    public static func sinusoid(
        amplitude: ClosedRange<Float> = 0.1...5, phase: ClosedRange<Float> = 0...Float.pi,
        inputRange: ClosedRange<Float> = -5...5
    ) -> RegressionTasks {
        RegressionTasks(
            name: "sinusoid", parameterRanges: [("amplitude", amplitude), ("phase", phase)], inputRange: inputRange,
            pointwise: { x, p in Foundation.sin(x - p[1]) * p[0] })
    }

    /// `y = slope * x + intercept`.
    public static func line(
        slope: ClosedRange<Float> = -3...3, intercept: ClosedRange<Float> = -3...3,
        inputRange: ClosedRange<Float> = -5...5
    ) -> RegressionTasks {
        RegressionTasks(
            name: "linear", parameterRanges: [("slope", slope), ("intercept", intercept)], inputRange: inputRange,
            pointwise: { x, p in x * p[0] + p[1] })
    }

    /// Draws one task's parameters.
    public func sampleParameters(using rng: inout RandomGenerator) -> [Float] {
        parameterRanges.map { uniform($0.range, &rng) }
    }

    public func sample(tasks: Int, support: Int, query: Int, using rng: inout RandomGenerator) throws -> TaskBatch {
        try sample(parameters: (0..<tasks).map { _ in sampleParameters(using: &rng) },
                   support: support, query: query, using: &rng)
    }

    /// Samples points for tasks with the given parameters (a task stream fixes them).
    public func sample(
        parameters: [[Float]], support: Int, query: Int, using rng: inout RandomGenerator
    ) throws -> TaskBatch {
        let n = support + query
        var xs = [Float](), ys = [Float]()
        xs.reserveCapacity(parameters.count * n)
        ys.reserveCapacity(parameters.count * n)
        for p in parameters {
            if let pointwise {
                for _ in 0..<n { xs.append(uniform(inputRange, &rng)) }
                for x in xs[(xs.count - n)...] {
                    let y = pointwise(x, p)
                    ys.append(noise > 0 ? y + noise * rng.nextNormal() : y)
                }
                continue
            }
            let x = (0..<n).map { _ in uniform(inputRange, &rng) }
            let y = try function(Tensor(x), p)
            guard y.count == n else {
                throw ShapeError("task function returned \(y.count) values for \(n) points")
            }
            xs += x
            ys += y.scalars.map { noise > 0 ? $0 + noise * rng.nextNormal() : $0 }
        }
        let t = parameters.count
        let x = Tensor(shape: [t, n, 1], values: xs), y = Tensor(shape: [t, n, 1], values: ys)
        return TaskBatch(
            support: Split(inputs: x.slice(axis: 1, 0..<support), targets: .values(y.slice(axis: 1, 0..<support))),
            query: Split(inputs: x.slice(axis: 1, support..<n), targets: .values(y.slice(axis: 1, support..<n))))
    }

    private func uniform(_ r: ClosedRange<Float>, _ rng: inout RandomGenerator) -> Float {
        r.lowerBound + (r.upperBound - r.lowerBound) * rng.nextFloat()
    }
}
