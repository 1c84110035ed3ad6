import Foundation

/// The one pseudo-random generator of the engine: xoshiro256**, seeded explicitly through
/// SplitMix64. There is no global generator; every sampler takes one `inout`, so a run is
/// reproducible from its seeds, and the state can be saved and restored (checkpoints).
///
/// ```swift
/// var rng = RandomGenerator(seed: 7)
/// let x = rng.nextFloat(in: -5..<5)
/// ```
public struct RandomGenerator: RandomNumberGenerator, Codable, Hashable, Sendable {
    public private(set) var state: [UInt64]

    public init(seed: UInt64) {
        var s = seed
        func splitMix() -> UInt64 {
            s &+= 0x9E37_79B9_7F4A_7C15
            var z = s
            z = (z ^ (z >> 30)) &* 0xBF58_476D_1CE4_E5B9
            z = (z ^ (z >> 27)) &* 0x94D0_49BB_1331_11EB
            return z ^ (z >> 31)
        }
        state = [splitMix(), splitMix(), splitMix(), splitMix()]
    }

    /// Restores a generator from a saved `state`.
    public init(state: [UInt64]) {
        precondition(state.count == 4 && state.contains { $0 != 0 }, "invalid generator state")
        self.state = state
    }

    public mutating func next() -> UInt64 {
        let result = rotate(state[1] &* 5, 7) &* 9
        let t = state[1] << 17
        state[2] ^= state[0]
        state[3] ^= state[1]
        state[1] ^= state[2]
        state[0] ^= state[3]
        state[2] ^= t
        state[3] = rotate(state[3], 45)
        return result
    }

    private func rotate(_ x: UInt64, _ k: UInt64) -> UInt64 { (x << k) | (x >> (64 - k)) }

    /// A uniform float in [0, 1) with 24 random bits.
    public mutating func nextFloat() -> Float { Float(next() >> 40) * 0x1p-24 }

    public mutating func nextFloat(in range: Range<Float>) -> Float {
        range.lowerBound + (range.upperBound - range.lowerBound) * nextFloat()
    }

    /// A uniform double in [0, 1) with 53 random bits.
    public mutating func nextDouble() -> Double { Double(next() >> 11) * 0x1p-53 }

    /// A standard normal sample (Box-Muller).
    public mutating func nextNormal() -> Float {
        let u1 = max(nextDouble(), .leastNonzeroMagnitude)
        let u2 = nextDouble()
        return Float((-2 * Foundation.log(u1)).squareRoot() * Foundation.cos(2 * .pi * u2))
    }

    /// A uniform integer in `0..<bound`.
    public mutating func nextInt(below bound: Int) -> Int {
        precondition(bound > 0, "nextInt(below:) needs a positive bound")
        return Int(next(upperBound: UInt64(bound)))
    }

    /// `count` distinct integers from `0..<bound`, in random order.
    public mutating func sample(_ count: Int, from bound: Int) -> [Int] {
        precondition(count <= bound, "cannot draw \(count) distinct values from \(bound)")
        var pool = Array(0..<bound)
        for i in 0..<count { pool.swapAt(i, i + nextInt(below: bound - i)) }
        return Array(pool.prefix(count))
    }

    /// A new generator for a sub-stream, so that consumers do not share one sequence.
    public mutating func split() -> RandomGenerator { RandomGenerator(seed: next()) }
}
