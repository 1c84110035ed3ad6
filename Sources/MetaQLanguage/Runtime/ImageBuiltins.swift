import Foundation
import MetaQEngine

// MARK: Few-shot image datasets (miniImageNet, tieredImageNet, CUB) and listed episodes

extension Builtins {
    static let imageTaskBlocks: [BlockBuiltin] = [
        BlockBuiltin(schema: BlockSchema(
            "images", .tasks,
            summary: "N-way K-shot classification over a few-shot image dataset of PNG or JPEG files, resized to size x size with 1 (gray) or 3 (RGB) channels, in [0, 1] or normalised per channel. Layouts: with 'split S', ROOT/S.csv (Ravi & Larochelle's miniImageNet split: a 'filename,label' header, then one row per image, found as IMAGES/<filename> or IMAGES/<label>/<filename>) if it exists, else class folders ROOT/S/<class>/<image>; without 'split', class folders ROOT/<class>/<image>. Classes are in sorted name order. The first load decodes every image and writes the results to one cache file (in ROOT/.metaq-cache, or ~/.cache/metaq/images when ROOT is not writable, or 'cache_dir'); later loads with the same settings map that file instead of decoding, and it is rebuilt when an image is added, removed, renamed or changed (name, size or modification time) or the file is damaged. 'eval ... < episodes \"file.csv\" >' evaluates on listed episodes of these images (the 'episodes' command writes such a list), and 'eval ... < episodes \"FOLDER\" >' on fixed episodes given as images, FOLDER/<episode>/<class>/ holding support* and query* files.",
            keys: [
                KeySpec("root", .string, default: nil, "the dataset folder"),
                .optional("split", .string, "the split: ROOT/<split>.csv, or the folder ROOT/<split> of class folders"),
                KeySpec("images", .string, default: "\"images\"", "the images folder of a split CSV, relative to root unless it starts with /"),
                KeySpec("size", .int(min: 4, max: 512), default: "84", "image side after resizing"),
                KeySpec("channels", .int(min: 1, max: 3), default: "3", "1 (gray) or 3 (RGB)"),
                .optional("mean", .numberList, "per-channel means to subtract (one number per channel)"),
                .optional("std", .numberList, "per-channel standard deviations to divide by (one positive number per channel)"),
                KeySpec("ways", .int(min: 2, max: 10_000), default: "5", "classes per task"),
                KeySpec("support", .size, default: "1", "support images per class (K shots)"),
                KeySpec("query", .size, default: "15", "query images per class"),
                KeySpec("cache", .bool, default: "true", "keep the decoded images in a cache file, mapped into memory on later loads (false: decode every time, write nothing)"),
                .optional("cache_dir", .string, "the cache folder (default ROOT/.metaq-cache, or ~/.cache/metaq/images if that cannot be written)"),
            ],
            example: "tasks test = images < root \"mini-imagenet\" split \"test\" size 84 channels 3 ways 5 support 1 query 15 >")) { b, interp in
            let channels = b.int("channels")
            guard channels == 1 || channels == 3 else { throw b.error("'channels' must be 1 (gray) or 3 (RGB), got \(channels)", key: "channels") }
            func perChannel(_ key: String) throws -> [Float]? {
                guard let values = b.numbers(key) else { return nil }
                guard values.count == channels else {
                    throw b.error("'\(key)' needs \(channels) number\(channels == 1 ? "" : "s"), one per channel; got \(values.count)", key: key)
                }
                guard values.allSatisfy({ $0.isFinite }), key != "std" || values.allSatisfy({ $0 > 0 }) else {
                    throw b.error(key == "std" ? "'std' values must be positive" : "'mean' values must be finite", key: key)
                }
                return values.map { Float($0) }
            }
            let mean = try perChannel("mean"), std = try perChannel("std")
            let root = b.string("root")!, size = b.int("size")
            let layout: (kind: String, path: String)
            if let split = b.string("split") {
                guard !split.isEmpty, !split.contains("/") else { throw b.error("'split' must be a name such as \"test\", got \"\(split)\"", key: "split") }
                let csv = join(root, split + ".csv"), folder = join(root, split)
                if FileManager.default.fileExists(atPath: csv) {
                    layout = ("csv", csv)
                } else if isFolder(folder) {
                    layout = ("folders", folder)
                } else {
                    throw b.error("split '\(split)': neither \(csv) nor the folder \(folder) exists", key: "split")
                }
            } else {
                // A miniImageNet-style root is not a folder of classes: its images folder would load as one class.
                let splits = ["train", "val", "test"].filter { FileManager.default.fileExists(atPath: join(root, $0 + ".csv")) }
                guard splits.isEmpty else {
                    throw b.error("\(root) holds split files (\(splits.map { $0 + ".csv" }.joined(separator: ", "))): give 'split', e.g. split \"\(splits.last!)\"", key: "root")
                }
                layout = ("folders", root)
            }
            let cache = try imageCache(b)
            let images = b.string("images")!
            let imagesFolder = images.hasPrefix("/") ? images : join(root, images)
            let cacheKey = "\(layout.kind)#\(layout.path)#\(imagesFolder)#\(size)#\(channels)#\(mean ?? [])#\(std ?? [])"
            let data: ImageDataset
            if let cached = interp.imageDatasets[cacheKey] { data = cached } else {
                do {
                    // Decoded images may take half the machine's memory, as a model or a batch may.
                    let limit = min(ImageDataset.maxStoredValues, Limits.maximumFloats)
                    data = layout.kind == "csv"
                        ? try ImageDataset(splitCSV: layout.path, images: imagesFolder, imageSize: size, channels: channels,
                                           mean: mean, std: std, cache: cache, maxStoredValues: limit)
                        : try ImageDataset(classFolders: layout.path, imageSize: size, channels: channels,
                                           mean: mean, std: std, cache: cache, maxStoredValues: limit)
                } catch { throw b.error("\(error)", key: b.keyRanges["split"] != nil ? "split" : "root") }
                interp.imageDatasets[cacheKey] = data
            }
            let d: ImageSetTasks
            do {
                d = try ImageSetTasks(dataset: data, ways: b.int("ways"))
                try data.requireImages(shots: b.int("support"), queries: b.int("query"))
            } catch { throw b.error("\(error)", key: "ways") }
            return .tasks(TasksValue(distribution: d, kind: "images", support: b.int("support"), query: b.int("query"),
                                     summary: "\(b.int("ways"))-way \(b.int("support"))-shot, \(data.classCount) classes, \(data.totalImageCount) images of \(size) x \(size) x \(channels) from \(layout.path)\(cacheNote(data.cacheOutcome))"))
        },
    ]

    static let imageCommands: [CommandBuiltin] = [
        CommandBuiltin(
            doc: FunctionDoc(name: "episodes", signature: "episodes TASKS < file \"file.csv\" count N seed S support K query Q >",
                             summary: "Draws a fixed list of episodes from image tasks ('images') with a seed of its own, and writes it as CSV: a header 'episode,class,role,file', then one row per image (episode number, class name, support or query, the image's file name in its class folder or its filename in the split CSV). Within an episode, classes are labelled in the order they first appear. 'eval ... < episodes \"file.csv\" >' scores exactly these episodes, so two runs and two learners are compared on the same tasks. Returns the number of episodes.",
                             example: "episodes test < file \"out/test-episodes.csv\" count 600 seed 1 >"),
            options: BlockSchema("episodes", .command, summary: "Options of 'episodes'.", keys: [
                KeySpec("file", .string, default: nil, "the CSV file to write"),
                KeySpec("count", .int(min: 1, max: 1_000_000), default: "600", "episodes to draw"),
                KeySpec("seed", .count, default: "0", "the seed of the draw (the session's generator is not used)"),
                .optional("support", .size, "support images per class (default: the tasks' own)"),
                .optional("query", .size, "query images per class (default: the tasks' own)"),
            ], example: "episodes test < file \"out/test-episodes.csv\" count 600 seed 1 >")) { c, interp in
            let t = try c.argument(nil, "image tasks")
            guard case let .tasks(tasks) = t.value, let images = tasks.distribution as? ImageSetTasks else {
                throw RuntimeError("'episodes' needs image tasks (an 'images' block), got \(t.value.typeName == "tasks" ? "\(t.value.displayText)" : "a \(t.value.typeName)")", at: t.range)
            }
            let o = c.options
            let path = o.string("file")!, targetRange = o.range(of: "file")
            let support = o.optionalInt("support") ?? tasks.support, query = o.optionalInt("query") ?? tasks.query
            var rng = RandomGenerator(seed: UInt64(o.int("seed")))
            var episodes: [ImageEpisode] = []
            do {
                for _ in 0..<o.int("count") { episodes.append(try images.drawEpisode(support: support, query: query, using: &rng)) }
            } catch { throw RuntimeError("\(error)", at: c.range) }
            let text: String
            do { text = try EpisodeFile.text(episodes, of: images.dataset) } catch { throw RuntimeError("\(error)", at: c.range) }
            do { try TextFile.write(text, to: path) } catch {
                throw RuntimeError("cannot write \(path): \(error)", at: targetRange)
            }
            return .int(episodes.count)
        },
    ]

    /// The 'cache' and 'cache_dir' keys of a block that loads images (images, omniglot).
    static func imageCache(_ b: ValidatedBlock) throws -> ImageCache {
        if !b.bool("cache") {
            if b.keyRanges["cache_dir"] != nil { throw b.error("'cache_dir' cannot be given with 'cache false'", key: "cache_dir") }
            return .off
        } else if let folder = b.string("cache_dir") {
            guard !folder.isEmpty else { throw b.error("'cache_dir' must name a folder", key: "cache_dir") }
            return .folder(folder)
        }
        return .automatic
    }

    /// How a dataset's images were loaded, for its summary.
    static func cacheNote(_ outcome: ImageCacheOutcome) -> String {
        switch outcome {
        case .off: ""
        case .loaded(let path): "; mapped from the cache \(path)"
        case .written(let path): "; decoded and cached in \(path)"
        case .unwritable(let reason): "; decoded, not cached (\(reason))"
        }
    }

    private static func join(_ folder: String, _ name: String) -> String {
        folder.hasSuffix("/") ? folder + name : folder + "/" + name
    }

    static func isFolder(_ path: String) -> Bool {
        var isDirectory: ObjCBool = false
        return FileManager.default.fileExists(atPath: path, isDirectory: &isDirectory) && isDirectory.boolValue
    }
}

extension Interpreter {
    /// `eval ... < episodes "file.csv" >` or `eval ... < episodes "FOLDER" >`: scores exactly
    /// the listed episodes of image tasks, or the fixed episodes of a folder of images
    /// (`FOLDER/<episode>/<class>/support*|query*`, decoded with the tasks' settings).
    func evaluateListedEpisodes(_ c: CommandInvocation, path: String, tasks: TasksValue, engine: MetaLearner, steps: [Int]) throws -> Value {
        let o = c.options
        guard let images = tasks.distribution as? ImageSetTasks else {
            throw o.error("'episodes' lists images; these are \(tasks.kind) tasks (use an 'images' block)", key: "episodes")
        }
        if let key = ["tasks", "support", "query"].first(where: { o.keyRanges[$0] != nil }) {
            throw o.error("'\(key)' cannot be given with 'episodes': the file sets the episodes and their images", key: key)
        }
        let names: [String], episodes: [ImageEpisode], scored: ImageSetTasks
        if Builtins.isFolder(path) {
            let listing: EpisodeFolder.Listing
            do {
                listing = try EpisodeFolder.read(path, like: images.dataset, maxStoredValues: min(ImageDataset.maxStoredValues, Limits.maximumFloats))
            } catch { throw o.error("\(error)", key: "episodes") }
            guard listing.episodes[0].ways == images.ways else {
                throw o.error("\(path) holds \(listing.episodes[0].ways)-way episodes; the tasks are \(images.ways)-way", key: "episodes")
            }
            (names, episodes) = (listing.names, listing.episodes)
            do { scored = try ImageSetTasks(dataset: listing.dataset, ways: images.ways) } catch { throw o.error("\(error)", key: "episodes") }
        } else {
            do { (names, episodes) = try EpisodeFile.readNamed(path, dataset: images.dataset) } catch { throw o.error("\(error)", key: "episodes") }
            guard episodes[0].ways == images.ways else {
                throw o.error("\(path) lists \(episodes[0].ways)-way episodes; the tasks are \(images.ways)-way", key: "episodes")
            }
            scored = images
        }
        try Limits.requireBatch(tasks: min(o.int("batch"), episodes.count), support: episodes[0].support[0].count,
                                query: episodes[0].query[0].count, of: images, at: c.range)
        if let scoresPath = o.string("scores") {
            // Before evaluating, not after it.
            do { try TextFile.requireFolder(of: scoresPath) } catch {
                throw RuntimeError("cannot write \(scoresPath): \(error)", at: o.range(of: "scores"))
            }
        }
        let scores = engine.scores(episodes: episodes, of: scored, steps: steps, batchSize: o.int("batch"))
        if let error = ScriptLearner.takeError(engine) { throw error }
        if let scoresPath = o.string("scores") {
            var lines = ["episode,steps,\(images.loss.reportsAccuracy ? "accuracy" : "mse")"]
            for (e, name) in names.enumerated() {
                let field = name.contains(where: { $0 == "," || $0 == "\"" || $0.isNewline }) ? "\"\(name.replacingOccurrences(of: "\"", with: "\"\""))\"" : name
                for (i, s) in steps.enumerated() { lines.append("\(field),\(s),\(Value.format(Double(scores[i][e])))") }
            }
            do { try TextFile.write(lines.joined(separator: "\n") + "\n", to: scoresPath) } catch {
                throw RuntimeError("cannot write \(scoresPath): \(error)", at: o.range(of: "scores"))
            }
        }
        return .report(EvaluationReport(metric: images.loss.reportsAccuracy ? "accuracy" : "mse",
                                        rows: zip(steps, scores).map { ScoreSummary(steps: $0, scores: $1, keepingScores: true) },
                                        episodes: names))
    }
}
