import Testing
@testable import MetaQEngine

/// Walks the primitive table: every differentiable row's gradient is checked against finite
/// differences on the row's own sample arguments, and every row differentiable to any order
/// gets a Hessian-vector check, so a row cannot be added without both.
@Suite("The primitive table")
struct PrimitiveTableTests {
    static let differentiable = Primitives.table.filter { $0.differentiation != .none }.map(\.name)
    static let anyOrder = Primitives.table.filter { $0.differentiation == .anyOrder }.map(\.name)

    /// The row's sample, its tensors to differentiate, and a function of those tensors.
    static func setUp(_ name: String) -> (f: ([Tensor]) -> Tensor, inputs: [Tensor]) {
        let p = Primitives.byName[name]!
        var rng = RandomGenerator(seed: 11)
        let args = p.sample(&rng)
        var inputs: [Tensor] = []
        var layout: [(Int, Int)] = []
        for i in args.indices {
            let differentiable = p.differentiableArguments.contains(i)
            switch args[i] {
            case let .tensor(t) where differentiable: layout.append((inputs.count, 1)); inputs.append(t)
            case let .tensors(ts) where differentiable: layout.append((inputs.count, ts.count)); inputs.append(contentsOf: ts)
            default: layout.append((0, -1))
            }
        }
        let f: ([Tensor]) -> Tensor = { ts in
            var rebuilt = args
            for (i, (start, n)) in layout.enumerated() where n >= 0 {
                if case .tensors = args[i] { rebuilt[i] = .tensors(Array(ts[start..<start + n])) } else { rebuilt[i] = .tensor(ts[start]) }
            }
            do { return try p.apply(rebuilt) } catch { Issue.record("\(name): \(error)"); return Tensor(0) }
        }
        return (f, inputs)
    }

    @Test("every differentiable row has tensor arguments to check")
    func rowsHaveChecks() {
        for p in Primitives.table where p.differentiation != .none {
            #expect(!Self.setUp(p.name).inputs.isEmpty, "\(p.name) has no differentiable sample argument")
        }
        #expect(Set(Primitives.table.map(\.name)).count == Primitives.table.count, "a name is registered twice")
    }

    @Test("gradients match finite differences", arguments: differentiable)
    func firstOrder(_ name: String) {
        let (f, inputs) = Self.setUp(name)
        GradientCheck.firstOrder(f, inputs)
    }

    @Test("Hessian-vector products match finite differences of gradients", arguments: anyOrder)
    func secondOrder(_ name: String) {
        let (f, inputs) = Self.setUp(name)
        GradientCheck.hessianVector(f, inputs)
    }

    @Test("constant rows give their values", arguments: Primitives.table.filter { $0.differentiation == .none }.map(\.name))
    func constants(_ name: String) throws {
        let p = Primitives.byName[name]!
        var rng = RandomGenerator(seed: 3)
        let y = try p.apply(p.sample(&rng))
        #expect(!y.requiresGradient)
        if name == "one_hot" { #expect(y.shape == [3, 3] && y.scalars == [0, 1, 0, 1, 0, 0, 0, 0, 1]) }
    }

    @Test("bad shapes throw instead of trapping")
    func shapeErrors() {
        let m = Primitives.byName
        #expect(throws: ShapeError.self) { try m["matmul"]!.apply([.tensor(Tensor.zeros([2, 3])), .tensor(Tensor.zeros([4, 5]))]) }
        #expect(throws: ShapeError.self) { try m["reshape"]!.apply([.tensor(Tensor.zeros([2, 3])), .ints([4, 2])]) }
        #expect(throws: ShapeError.self) { try m["cross_entropy"]!.apply([.tensor(Tensor.zeros([2, 3])), .tensor(Tensor([0, 3]))]) }
        #expect(throws: ShapeError.self) { try m["sum"]!.apply([.tensor(Tensor.zeros([2, 3])), .ints([2])]) }
        #expect(throws: ShapeError.self) { try m["take"]!.apply([.tensor(Tensor.zeros([2, 3])), .tensor(Tensor([2]))]) }
        #expect(throws: ShapeError.self) { try m["conv2d"]!.apply([.tensor(Tensor.zeros([1, 2, 2, 1])), .tensor(Tensor.zeros([3, 3, 1, 1])), .int(1), .int(0)]) }
        #expect(throws: ShapeError.self) { try m["one_hot"]!.apply([.tensor(Tensor([0.5])), .int(3)]) }
    }
}
