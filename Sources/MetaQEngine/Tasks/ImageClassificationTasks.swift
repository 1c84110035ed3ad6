/// N-way K-shot image classification tasks over an ``ImageFolderDataset`` (Omniglot layout),
/// as in the MAML and Prototypical Networks papers.
///
/// Each task picks `ways` classes from the pool, and for each class `support + query`
/// distinct images; labels 0..<ways are assigned in the random order the classes were drawn.
/// With `rotations`, every class rotated by 90, 180 and 270 degrees counts as a further class
/// (the usual augmentation, quadrupling the classes). With `withinAlphabet`, all classes of a
/// task come from one alphabet (harder tasks); otherwise from anywhere in the pool. With
/// `augmentation`, every sampled image is randomly distorted (see ``ImageAugmentation``).
/// Images are NHWC: `[tasks, ways * shots, size, size, 1]`, class-major.
///
/// ```swift
/// let data = try ImageFolderDataset(root: "omniglot/images_background_small1")
/// let train = ImageClassificationTasks(dataset: data, ways: 5, rotations: true)
/// let batch = try train.sample(tasks: 32, support: 1, query: 15, using: &rng)
/// ```
public struct ImageClassificationTasks: TaskDistribution {
    public let dataset: ImageFolderDataset
    /// The classes tasks are drawn from (indices into the dataset).
    public let classes: [Int]
    public var ways: Int
    public var rotations: Bool
    public var withinAlphabet: Bool
    /// A random distortion of every sampled image (support and query), or nil for none.
    public var augmentation: ImageAugmentation?

    public var loss: LossKind { .crossEntropy }
    public var inputShape: [Int] { [dataset.imageSize, dataset.imageSize, 1] }
    public var outputCount: Int { ways }

    /// Tasks over the classes of `alphabets` (nil: every alphabet of the dataset).
    public init(
        dataset: ImageFolderDataset, alphabets: [String]? = nil, ways: Int, rotations: Bool = false,
        withinAlphabet: Bool = false, augmentation: ImageAugmentation? = nil
    ) throws {
        let chosen = alphabets ?? dataset.alphabets
        let unknown = chosen.filter { !dataset.alphabets.contains($0) }
        guard unknown.isEmpty else {
            throw DataError.missingFolder("\(dataset.root)/\(unknown[0]) (alphabets there: \(dataset.alphabets.joined(separator: ", ")))")
        }
        self.dataset = dataset
        self.classes = dataset.classes(inAlphabets: Set(chosen))
        self.ways = ways
        self.rotations = rotations
        self.withinAlphabet = withinAlphabet
        self.augmentation = augmentation
        let available = classes.count * (rotations ? 4 : 1)
        guard ways >= 2, ways <= available else {
            throw ShapeError("a \(ways)-way task needs at least \(ways) classes; the pool has \(available)")
        }
        if withinAlphabet, alphabetPools().isEmpty {
            // Drawing from the whole pool instead would silently mix alphabets.
            let multiplier = rotations ? 4 : 1
            let largest = Dictionary(grouping: classes, by: dataset.alphabet(ofClass:)).values.map(\.count).max() ?? 0
            throw ShapeError("a \(ways)-way task drawn within one alphabet needs an alphabet of at least \(ways) classes; the largest has \(largest * multiplier)\(rotations ? " with rotations" : "")")
        }
    }

    /// The number of distinct classes tasks can use (rotations included).
    public var classCount: Int { classes.count * (rotations ? 4 : 1) }

    public func sample(tasks: Int, support: Int, query: Int, using rng: inout RandomGenerator) throws -> TaskBatch {
        try dataset.requireImages(shots: support, queries: query, classes: classes)
        let size = dataset.pixelsPerImage
        let perClass = support + query
        var supportPixels = [Float](repeating: 0, count: tasks * ways * support * size)
        var queryPixels = [Float](repeating: 0, count: tasks * ways * query * size)
        var supportLabels = [Int](), queryLabels = [Int]()
        supportLabels.reserveCapacity(tasks * ways * support)
        queryLabels.reserveCapacity(tasks * ways * query)
        let byAlphabet = withinAlphabet ? alphabetPools() : []
        for t in 0..<tasks {
            let drawn = drawClasses(using: &rng, byAlphabet: byAlphabet)
            for (label, (cls, turns)) in drawn.enumerated() {
                let images = rng.sample(perClass, from: dataset.imageCount(ofClass: cls))
                for (i, image) in images.enumerated() {
                    let isSupport = i < support
                    let slot = isSupport ? (t * ways + label) * support + i : (t * ways + label) * query + (i - support)
                    func fill(_ pixels: inout [Float]) {
                        pixels.withUnsafeMutableBufferPointer {
                            let destination = UnsafeMutableBufferPointer(rebasing: $0[(slot * size)..<((slot + 1) * size)])
                            dataset.copyImage(ofClass: cls, image: image, quarterTurns: turns, into: destination)
                        }
                    }
                    if isSupport {
                        fill(&supportPixels)
                        supportLabels.append(label)
                    } else {
                        fill(&queryPixels)
                        queryLabels.append(label)
                    }
                }
            }
        }
        let side = dataset.imageSize
        if let augmentation, !augmentation.isIdentity {
            // Distortions come from a generator split off after the draws above, so the
            // classes and images of a seed are the same with augmentation as without.
            var warpRNG = rng.split()
            var scratch: [Float] = []
            func distort(_ pixels: inout [Float]) {
                pixels.withUnsafeMutableBufferPointer { all in
                    for image in 0..<(all.count / size) {
                        augmentation.apply(to: UnsafeMutableBufferPointer(rebasing: all[(image * size)..<((image + 1) * size)]),
                                           side: side, scratch: &scratch, using: &warpRNG)
                    }
                }
            }
            distort(&supportPixels)
            distort(&queryPixels)
        }
        return TaskBatch(
            support: Split(inputs: Tensor(shape: [tasks, ways * support, side, side, 1], values: supportPixels),
                           targets: .labels(supportLabels)),
            query: Split(inputs: Tensor(shape: [tasks, ways * query, side, side, 1], values: queryPixels),
                         targets: .labels(queryLabels)))
    }

    /// The pool's classes grouped by alphabet, keeping alphabets with enough classes.
    private func alphabetPools() -> [[Int]] {
        var pools: [String: [Int]] = [:]
        for c in classes { pools[dataset.alphabet(ofClass: c), default: []].append(c) }
        let multiplier = rotations ? 4 : 1
        return pools.keys.sorted().compactMap { pools[$0]!.count * multiplier >= ways ? pools[$0] : nil }
    }

    /// `ways` distinct (class, quarter turns) pairs.
    private func drawClasses(using rng: inout RandomGenerator, byAlphabet: [[Int]]) -> [(Int, Int)] {
        let pool = byAlphabet.isEmpty ? classes : byAlphabet[rng.nextInt(below: byAlphabet.count)]
        let multiplier = rotations ? 4 : 1
        return rng.sample(ways, from: pool.count * multiplier).map { (pool[$0 / multiplier], $0 % multiplier) }
    }
}
