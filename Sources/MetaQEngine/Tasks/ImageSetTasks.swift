import Foundation

/// One N-way episode over an ``ImageDataset``: for each label 0..<ways, the class and the
/// indices (within the class) of its support and query images.
public struct ImageEpisode: Equatable, Sendable {
    public var classes: [Int]
    public var support: [[Int]]
    public var query: [[Int]]

    public init(classes: [Int], support: [[Int]], query: [[Int]]) {
        self.classes = classes
        self.support = support
        self.query = query
    }

    public var ways: Int { classes.count }
}

/// N-way K-shot classification tasks over an ``ImageDataset`` (miniImageNet and the like).
///
/// A task draws `ways` distinct classes, labelled in the order drawn, and `support + query`
/// distinct images of each. Inputs are NHWC `[tasks, ways * shots, size, size, channels]`,
/// class-major. Episodes can also be listed (`EpisodeFile`) and turned into batches with
/// `batch(_:)`, so a published set of test episodes is evaluated exactly.
///
/// ```swift
/// let test = try ImageSetTasks(dataset: miniImageNetTest, ways: 5)
/// let batch = try test.sample(tasks: 4, support: 1, query: 15, using: &rng)
/// ```
public struct ImageSetTasks: TaskDistribution {
    public let dataset: ImageDataset
    public let ways: Int

    public var loss: LossKind { .crossEntropy }
    public var inputShape: [Int] { [dataset.imageSize, dataset.imageSize, dataset.channels] }
    public var outputCount: Int { ways }

    public init(dataset: ImageDataset, ways: Int) throws {
        guard ways >= 2, ways <= dataset.classCount else {
            throw ShapeError("a \(ways)-way task needs at least \(ways) classes; \(dataset.source) has \(dataset.classCount)")
        }
        self.dataset = dataset
        self.ways = ways
    }

    /// Draws one episode: `ways` classes and `support + query` distinct images of each.
    public func drawEpisode(support: Int, query: Int, using rng: inout RandomGenerator) throws -> ImageEpisode {
        try dataset.requireImages(shots: support, queries: query)
        var episode = ImageEpisode(classes: [], support: [], query: [])
        for cls in rng.sample(ways, from: dataset.classCount) {
            let images = rng.sample(support + query, from: dataset.imageCount(ofClass: cls))
            episode.classes.append(cls)
            episode.support.append(Array(images.prefix(support)))
            episode.query.append(Array(images.dropFirst(support)))
        }
        return episode
    }

    public func sample(tasks: Int, support: Int, query: Int, using rng: inout RandomGenerator) throws -> TaskBatch {
        var episodes: [ImageEpisode] = []
        for _ in 0..<tasks { episodes.append(try drawEpisode(support: support, query: query, using: &rng)) }
        return batch(episodes[...])
    }

    /// The batch of `episodes`, which must all have this family's `ways` and the same
    /// support and query counts per class (as `EpisodeFile.read` checks).
    public func batch(_ episodes: ArraySlice<ImageEpisode>) -> TaskBatch {
        let first = episodes[episodes.startIndex]
        let support = first.support[0].count, query = first.query[0].count
        precondition(episodes.allSatisfy { $0.ways == ways && $0.support.allSatisfy { $0.count == support } && $0.query.allSatisfy { $0.count == query } },
                     "episodes of one batch need \(ways) classes of \(support) support and \(query) query images")
        let size = dataset.valuesPerImage, tasks = episodes.count
        var supportPixels: [Float] = [], queryPixels: [Float] = []
        supportPixels.reserveCapacity(tasks * ways * support * size)
        queryPixels.reserveCapacity(tasks * ways * query * size)
        var supportLabels: [Int] = [], queryLabels: [Int] = []
        for episode in episodes {
            for (label, cls) in episode.classes.enumerated() {
                for image in episode.support[label] {
                    dataset.appendPixels(ofClass: cls, image: image, to: &supportPixels)
                    supportLabels.append(label)
                }
                for image in episode.query[label] {
                    dataset.appendPixels(ofClass: cls, image: image, to: &queryPixels)
                    queryLabels.append(label)
                }
            }
        }
        let side = dataset.imageSize, c = dataset.channels
        return TaskBatch(
            support: Split(inputs: Tensor(shape: [tasks, ways * support, side, side, c], values: supportPixels),
                           targets: .labels(supportLabels)),
            query: Split(inputs: Tensor(shape: [tasks, ways * query, side, side, c], values: queryPixels),
                         targets: .labels(queryLabels)))
    }
}

/// A list of episodes as a CSV file, so that two runs, or two learners, are scored on the
/// same test tasks:
///
/// ```
/// episode,class,role,file
/// 0,n01930112,support,n0193011200000012.jpg
/// 0,n01930112,query,n0193011200000437.jpg
/// ...
/// ```
///
/// One row per image. `episode` is any text naming the episode (its rows must be
/// consecutive), `class` a class name of the dataset (a class folder or a split CSV label),
/// `role` `support` or `query`, and `file` the image's name in its class (its file name in
/// the class folder, or its `filename` in the split CSV). Within an episode, classes are
/// labelled 0, 1, ... in the order they first appear. Every episode must have the same
/// number of classes, and every class the same number of support and of query images.
public enum EpisodeFile {
    public static let header = ["episode", "class", "role", "file"]

    /// The CSV text of `episodes` over `dataset`, episodes numbered from 0.
    ///
    /// - Throws: `DataError.invalidColumns` when a class or image name used holds a comma,
    ///   a quote or a line break, which the format cannot list.
    public static func text(_ episodes: [ImageEpisode], of dataset: ImageDataset) throws -> String {
        let unlistable = Set<Character>([",", "\"", "\n", "\r"])
        for episode in episodes {
            for (label, cls) in episode.classes.enumerated() {
                let names = [dataset.classNames[cls]] + (episode.support[label] + episode.query[label]).map { dataset.imageName(ofClass: cls, image: $0) }
                if let name = names.first(where: { $0.contains(where: unlistable.contains) || $0 != $0.trimmingCharacters(in: .whitespaces) }) {
                    throw DataError.invalidColumns(path: dataset.source,
                        reason: "'\(name)' cannot be listed in an episode file: names with commas, quotes, line breaks or surrounding spaces cannot")
                }
            }
        }
        var lines = [header.joined(separator: ",")]
        for (number, episode) in episodes.enumerated() {
            for (label, cls) in episode.classes.enumerated() {
                for (role, images) in [("support", episode.support[label]), ("query", episode.query[label])] {
                    for image in images {
                        lines.append("\(number),\(dataset.classNames[cls]),\(role),\(dataset.imageName(ofClass: cls, image: image))")
                    }
                }
            }
        }
        return lines.joined(separator: "\n") + "\n"
    }

    /// Reads and checks an episode file against `dataset`.
    ///
    /// - Throws: `DataError.malformedCSV` naming the file and line of the first problem: a
    ///   wrong header, a row without four fields, an unknown class or role, a file not in its
    ///   class, an image listed twice in an episode, an episode split in two, or an episode
    ///   whose classes or image counts differ from the first episode's.
    public static func read(_ path: String, dataset: ImageDataset) throws -> [ImageEpisode] {
        try readNamed(path, dataset: dataset).episodes
    }

    /// `read`, with each episode's name (its `episode` field), in the same order.
    public static func readNamed(_ path: String, dataset: ImageDataset) throws -> (names: [String], episodes: [ImageEpisode]) {
        let text: String
        do {
            let data = try Data(contentsOf: URL(filePath: path, directoryHint: .notDirectory))
            guard let decoded = String(data: data, encoding: .utf8) else {
                throw DataError.malformedCSV(path: path, line: nil, reason: "not UTF-8 text")
            }
            text = decoded
        } catch let error as DataError { throw error } catch {
            throw DataError.unreadableFile(path: path, reason: error.localizedDescription)
        }
        func fail(_ line: Int?, _ reason: String) -> DataError { .malformedCSV(path: path, line: line, reason: reason) }
        let lines = text.split(separator: "\n", omittingEmptySubsequences: false).map { $0.hasSuffix("\r") ? $0.dropLast() : $0 }
        guard lines.first.map({ $0.split(separator: ",").map { $0.trimmingCharacters(in: .whitespaces).lowercased() } }) == header else {
            throw fail(1, "the header must be '\(header.joined(separator: ","))'")
        }
        let classIndex = Dictionary(dataset.classNames.enumerated().map { ($1, $0) }, uniquingKeysWith: { a, _ in a })
        var episodes: [ImageEpisode] = []
        var names: [String] = [], firstLines: [Int] = []
        var current: (name: String, episode: ImageEpisode, used: Set<String>)?
        func finish() throws {
            guard let (_, episode, _) = current else { return }
            let line = firstLines.last!
            if let reference = episodes.first, episode.ways != reference.ways {
                throw fail(line, "episode '\(names.last!)' has \(episode.ways) classes; the first episode has \(reference.ways)")
            }
            let support = (episodes.first ?? episode).support[0].count, query = (episodes.first ?? episode).query[0].count
            for (label, cls) in episode.classes.enumerated() where episode.support[label].count != support || episode.query[label].count != query {
                throw fail(line, "episode '\(names.last!)': class \(dataset.classNames[cls]) has \(episode.support[label].count) support and \(episode.query[label].count) query images; every class needs \(support) and \(query)")
            }
            guard support > 0, query > 0 else {
                throw fail(line, "episode '\(names.last!)' needs support and query images for every class")
            }
            episodes.append(episode)
        }
        for (index, line) in lines.enumerated().dropFirst() where !line.trimmingCharacters(in: .whitespaces).isEmpty {
            let number = index + 1
            let fields = line.split(separator: ",", omittingEmptySubsequences: false).map { $0.trimmingCharacters(in: .whitespaces) }
            guard fields.count == 4 else {
                throw DataError.raggedRow(path: path, line: number, fieldCount: fields.count, headerCount: 4)
            }
            let (name, className, role, file) = (fields[0], fields[1], fields[2], fields[3])
            if current?.name != name {
                try finish()
                guard !names.contains(name) else { throw fail(number, "episode '\(name)' continues after another episode; list its rows together") }
                names.append(name)
                firstLines.append(number)
                current = (name, ImageEpisode(classes: [], support: [], query: []), [])
            }
            guard let cls = classIndex[className] else {
                throw fail(number, "unknown class '\(className)' (not in \(dataset.source))")
            }
            guard role == "support" || role == "query" else {
                throw fail(number, "role '\(role)' must be 'support' or 'query'")
            }
            guard let image = dataset.image(named: file, inClass: cls) else {
                throw fail(number, "class '\(className)' has no image '\(file)'")
            }
            guard current!.used.insert("\(cls)/\(image)").inserted else {
                throw fail(number, "image '\(file)' of class '\(className)' is listed twice in episode '\(name)'")
            }
            var episode = current!.episode
            let label: Int
            if let existing = episode.classes.firstIndex(of: cls) { label = existing } else {
                episode.classes.append(cls)
                episode.support.append([])
                episode.query.append([])
                label = episode.classes.count - 1
            }
            if role == "support" { episode.support[label].append(image) } else { episode.query[label].append(image) }
            current!.episode = episode
        }
        try finish()
        guard !episodes.isEmpty else { throw fail(nil, "no episodes listed") }
        return (names, episodes)
    }
}

extension MetaLearner {
    /// Evaluates on exactly `episodes` of `tasks`, in order, `batchSize` at a time.
    ///
    /// ```swift
    /// let episodes = try EpisodeFile.read("test-episodes.csv", dataset: test.dataset)
    /// let report = learner.evaluate(episodes: episodes, of: test, steps: [0, 10])
    /// ```
    public func evaluate(episodes: [ImageEpisode], of tasks: ImageSetTasks, steps: [Int], batchSize: Int = 25) -> EvaluationReport {
        let perStep = scores(episodes: episodes, of: tasks, steps: steps, batchSize: batchSize)
        return EvaluationReport(metric: loss.reportsAccuracy ? "accuracy" : "mse",
                                rows: zip(steps, perStep).map { ScoreSummary(steps: $0, scores: $1) })
    }

    /// The score of each of `episodes` (in order) for each of `steps`: `[steps][episodes]`.
    public func scores(episodes: [ImageEpisode], of tasks: ImageSetTasks, steps: [Int], batchSize: Int = 25) -> [[Float]] {
        var perStep = [[Float]](repeating: [], count: steps.count)
        var done = 0
        while done < episodes.count {
            let n = min(max(batchSize, 1), episodes.count - done)
            let batch = tasks.batch(episodes[done..<done + n])
            for (i, scores) in groupedScores(batch, steps: steps).enumerated() { perStep[i] += scores }
            done += n
        }
        return perStep
    }
}
