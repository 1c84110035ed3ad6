import Foundation
import MetaQEngine

/// Times `Tensor.product` for the shapes of the sinusoid MLP (a diagnostic, not part of the JSON).
func probeProducts() {
    var rng = RandomGenerator(seed: 1)
    let shapes: [(String, [Int], [Int], Bool, Bool)] = [
        ("x W", [25, 10, 40], [25, 40, 40], false, false),
        ("g W^T", [25, 10, 40], [25, 40, 40], false, true),
        ("x^T g", [25, 10, 40], [25, 10, 40], true, false),
        ("x W3", [25, 10, 40], [25, 40, 1], false, false),
        ("x1 W1", [25, 10, 1], [25, 1, 40], false, false),
    ]
    for (name, sa, sb, ta, tb) in shapes {
        let a = Tensor.uniform(sa, using: &rng), b = Tensor.uniform(sb, using: &rng)
        let start = Date()
        for _ in 0..<2000 { _ = Tensor.product(a, b, transposeA: ta, transposeB: tb) }
        print(name, String(format: "%.2f us", Date().timeIntervalSince(start) / 2000 * 1e6))
    }
}
