import Foundation

/// Fixed evaluation episodes as a folder of images, `EPISODES/<episode>/<class>/<image>`:
/// each class folder holds that class's support images, whose file names start with
/// `support`, and its query images, whose file names start with `query` (for example
/// `support_0.jpg`, `query_07.png`; case does not matter).
///
/// ```
/// test-episodes/
///   0001/
///     n01930112/  support.jpg  query_00.jpg ... query_14.jpg
///     n02110341/  support.jpg  query_00.jpg ... query_14.jpg
///     ...
///   0002/
///     ...
/// ```
///
/// Episodes are taken in name order (numbers in names compared as numbers: `2` before
/// `10`), classes in name order within an episode (labelled 0, 1, ...), and images in name
/// order. Every episode must have the same number of classes and every class the same
/// number of support and of query images. Hidden entries and files other than PNG and JPEG
/// are ignored. The images are decoded with a dataset's settings (size, channels, mean and
/// standard deviation, cache), so a learner trained on that dataset is scored on them.
///
/// ```swift
/// let listing = try EpisodeFolder.read("test-episodes", like: test.dataset)
/// let report = learner.evaluate(episodes: listing.episodes, of: try ImageSetTasks(dataset: listing.dataset, ways: 5), steps: [0])
/// ```
public enum EpisodeFolder {
    /// The episodes of a folder: their names, the images as a dataset (one class per episode
    /// class, named `<episode>/<class>`, support images first), and the episodes over it.
    public struct Listing: Sendable {
        public let names: [String]
        public let episodes: [ImageEpisode]
        public let dataset: ImageDataset
    }

    /// The prefixes of support and query image file names.
    public static let roles = ["support", "query"]

    /// Reads and checks the episodes in `folder`, decoding their images as `dataset` does.
    ///
    /// - Throws: `DataError.missingFolder` if `folder` is not a folder;
    ///   `DataError.malformedEpisodes` naming the folder or file at fault: no episode folders,
    ///   an episode without class folders, a class without support or without query images,
    ///   an image whose name starts with neither `support` nor `query`, an episode whose
    ///   number of classes, or a class whose number of support or query images, differs from
    ///   the first episode's; decoding errors naming the image file.
    public static func read(_ folder: String, like dataset: ImageDataset,
                            maxStoredValues: Int = ImageDataset.maxStoredValues) throws -> Listing {
        guard ImageDataset.isFolder(folder) else { throw DataError.missingFolder(folder) }
        func byName(_ a: String, _ b: String) -> Bool { a.compare(b, options: .numeric) == .orderedAscending }
        let episodeNames = try ImageDataset.entries(of: folder).filter { ImageDataset.isFolder(ImageDataset.join(folder, $0)) }.sorted(by: byName)
        guard !episodeNames.isEmpty else {
            throw DataError.malformedEpisodes(path: folder, reason: "no episode folders (the layout is EPISODES/<episode>/<class>/ with images named support* and query*)")
        }
        var classes: [(name: String, files: [(name: String, path: String)])] = []
        var episodes: [ImageEpisode] = []
        var first: (path: String, ways: Int, support: Int, query: Int)?
        for episodeName in episodeNames {
            let episodePath = ImageDataset.join(folder, episodeName)
            let classNames = try ImageDataset.entries(of: episodePath).filter { ImageDataset.isFolder(ImageDataset.join(episodePath, $0)) }.sorted(by: byName)
            guard !classNames.isEmpty else {
                throw DataError.malformedEpisodes(path: episodePath, reason: "no class folders in this episode")
            }
            if let first, classNames.count != first.ways {
                throw DataError.malformedEpisodes(path: episodePath, reason: "\(classNames.count) classes; the first episode (\(first.path)) has \(first.ways)")
            }
            var episode = ImageEpisode(classes: [], support: [], query: [])
            for className in classNames {
                let classPath = ImageDataset.join(episodePath, className)
                var byRole: [[(name: String, path: String)]] = [[], []]
                for file in try ImageDataset.entries(of: classPath).sorted(by: byName)
                where ImageDataset.imageExtensions.contains(where: { file.lowercased().hasSuffix($0) }) {
                    guard let role = roles.firstIndex(where: { file.lowercased().hasPrefix($0) }) else {
                        throw DataError.malformedEpisodes(path: ImageDataset.join(classPath, file),
                                                          reason: "an episode image's name must start with 'support' or 'query'")
                    }
                    byRole[role].append((file, ImageDataset.join(classPath, file)))
                }
                for (role, images) in zip(roles, byRole) where images.isEmpty {
                    throw DataError.malformedEpisodes(path: classPath, reason: "no \(role) images (PNG or JPEG files named \(role)*)")
                }
                let (support, query) = (byRole[0].count, byRole[1].count)
                if let first, support != first.support || query != first.query {
                    throw DataError.malformedEpisodes(path: classPath, reason: "\(support) support and \(query) query images; every class needs \(first.support) and \(first.query), as in \(first.path)")
                }
                if first == nil, let previous = episode.classes.last {
                    let (s, q) = (episode.support[episode.support.count - 1].count, episode.query[episode.query.count - 1].count)
                    if support != s || query != q {
                        throw DataError.malformedEpisodes(path: classPath, reason: "\(support) support and \(query) query images; every class needs as many as the episode's first class (\(s) and \(q), in \(classes[previous].name))")
                    }
                }
                episode.classes.append(classes.count)
                episode.support.append(Array(0..<support))
                episode.query.append(Array(support..<support + query))
                classes.append(("\(episodeName)/\(className)", byRole[0] + byRole[1]))
            }
            if first == nil {
                first = (episodePath, episode.ways, episode.support[0].count, episode.query[0].count)
            }
            episodes.append(episode)
        }
        let images = try ImageDataset(source: folder, classes: classes, imageSize: dataset.imageSize, channels: dataset.channels,
                                      mean: dataset.mean, std: dataset.std, cache: dataset.cache, cacheBeside: folder,
                                      maxStoredValues: maxStoredValues)
        return Listing(names: episodeNames, episodes: episodes, dataset: images)
    }
}
