import Foundation
import Testing

import MetaQEngine

/// Writes a tiny few-shot dataset under `folder` in both standard layouts and returns
/// nothing: `folder/train/<class>/<i>.jpg` (class folders under a split folder) and
/// `folder/images/<file>` with `folder/test.csv` (a miniImageNet-style split CSV).
/// Class `c`'s images are a solid colour, so every image is recognisable after JPEG.
func writeTinyImageDataset(in folder: String, classes: [String] = ["n01", "n02", "n03"], perClass: Int = 4) throws {
    let fm = FileManager.default
    try fm.createDirectory(atPath: folder + "/images", withIntermediateDirectories: true)
    var rows = ["filename,label"]
    for (c, name) in classes.enumerated() {
        try fm.createDirectory(atPath: folder + "/train/" + name, withIntermediateDirectories: true)
        for i in 0..<perClass {
            let red = Float(c) / Float(max(classes.count - 1, 1))
            let image = ColorImage(width: 10, height: 6, channels: 3,
                                   pixels: (0..<60).flatMap { _ in [red, Float(i) / Float(perClass), 0.5] })
            try Data(image.jpegData(quality: 100)).write(to: URL(fileURLWithPath: "\(folder)/train/\(name)/\(i).jpg"))
            let file = "\(name)\(String(format: "%08d", i)).png"
            try Data(image.pngData()).write(to: URL(fileURLWithPath: "\(folder)/images/\(file)"))
            rows.append("\(file),\(name)")
        }
    }
    try (rows.joined(separator: "\n") + "\n").write(toFile: folder + "/test.csv", atomically: true, encoding: .utf8)
}

private func withTinyDataset<T>(_ body: (String) throws -> T) throws -> T {
    let folder = FileManager.default.temporaryDirectory.appendingPathComponent("metaq-images-\(UUID().uuidString)").path
    defer { try? FileManager.default.removeItem(atPath: folder) }
    try writeTinyImageDataset(in: folder)
    return try body(folder)
}

@Suite struct ImageDatasetTests {
    @Test func readsClassFoldersOfJPEGs() throws {
        try withTinyDataset { root in
            let data = try ImageDataset(classFolders: root + "/train", imageSize: 4, channels: 3)
            #expect(data.classNames == ["n01", "n02", "n03"])
            #expect(data.totalImageCount == 12 && data.valuesPerImage == 48)
            #expect(data.imageName(ofClass: 1, image: 2) == "2.jpg")
            let pixel = Array(data.pixels(ofClass: 2, image: 0).prefix(3))
            #expect(abs(pixel[0] - 1) < 0.03 && abs(pixel[1]) < 0.03 && abs(pixel[2] - 0.5) < 0.03, "\(pixel)")
        }
    }

    @Test func readsASplitCSVAndNormalisesPerChannel() throws {
        try withTinyDataset { root in
            let data = try ImageDataset(splitCSV: root + "/test.csv", images: root + "/images", imageSize: 3, channels: 3,
                                        mean: [0.5, 0.5, 0.5], std: [0.5, 0.25, 1])
            #expect(data.classNames == ["n01", "n02", "n03"] && data.totalImageCount == 12)
            #expect(data.image(named: "n0200000003.png", inClass: 1) == 3)
            // Class n02 is red 0.5, image 2 green 0.5, blue 0.5 (PNG, exact to 8 bits).
            let pixel = Array(data.pixels(ofClass: 1, image: 2).prefix(3))
            let expected: [Float] = [(128.0 / 255 - 0.5) / 0.5, (128.0 / 255 - 0.5) / 0.25, (128.0 / 255 - 0.5)]
            #expect(zip(pixel, expected).allSatisfy { abs($0 - $1) < 1e-5 }, "\(pixel)")
            let gray = try ImageDataset(splitCSV: root + "/test.csv", images: root + "/images", imageSize: 3, channels: 1)
            #expect(gray.valuesPerImage == 9)
        }
    }

    @Test func namesTheProblemInASplitCSV() throws {
        try withTinyDataset { root in
            func message(_ csv: String) throws -> String {
                try csv.write(toFile: root + "/bad.csv", atomically: true, encoding: .utf8)
                return imageErrorMessage { try ImageDataset(splitCSV: root + "/bad.csv", images: root + "/images", imageSize: 4, channels: 3) }
            }
            #expect(try message("file,class\n") == "\(root)/bad.csv:1: the header must be 'filename,label'")
            #expect(try message("filename,label\nmissing.jpg,n01\n")
                == "\(root)/bad.csv:2: image 'missing.jpg' is in neither \(root)/images/missing.jpg nor \(root)/images/n01/missing.jpg")
            #expect(try message("filename,label\nn0100000000.png\n") == "\(root)/bad.csv:2: row has 1 field, header has 2")
            #expect(try message("filename,label\nn0100000000.png,n01\nn0100000000.png,n01\n")
                == "\(root)/bad.csv:3: 'n0100000000.png' is listed twice")
            #expect(try message("filename,label\n") == "\(root)/bad.csv: no images listed")
            try Data("not an image".utf8).write(to: URL(fileURLWithPath: root + "/images/text.jpg"))
            #expect(try message("filename,label\ntext.jpg,n09\n") == "\(root)/images/text.jpg: not a PNG or JPEG image (unknown signature)")
        }
    }

    @Test func refusesADatasetLargerThanTheLimitBeforeDecoding() throws {
        try withTinyDataset { root in
            // 12 images of 4 x 4 x 3 = 576 values; the limit is 575.
            #expect(imageErrorMessage { try ImageDataset(classFolders: root + "/train", imageSize: 4, channels: 3, maxStoredValues: 575) }
                == "\(root)/train: 12 images of 48 values each need 2.3 KB of memory; at most 2.3 KB are allowed")
            let fits = try ImageDataset(classFolders: root + "/train", imageSize: 4, channels: 3, maxStoredValues: 576)
            #expect(fits.totalImageCount == 12)
        }
    }

    @Test func reportsMissingAndEmptyFolders() throws {
        try withTinyDataset { root in
            #expect(imageErrorMessage { try ImageDataset(classFolders: root + "/nowhere", imageSize: 4, channels: 3) }
                == "missing folder: \(root)/nowhere")
            #expect(imageErrorMessage { try ImageDataset(classFolders: root + "/images", imageSize: 4, channels: 3) }
                == "no class folders with PNG or JPEG images under \(root)/images")
        }
    }

    @Test func samplesEpisodesOfTheRightShapeAndLabels() throws {
        try withTinyDataset { root in
            let tasks = try ImageSetTasks(dataset: ImageDataset(classFolders: root + "/train", imageSize: 5, channels: 3), ways: 2)
            var rng = RandomGenerator(seed: 3)
            let batch = try tasks.sample(tasks: 3, support: 1, query: 2, using: &rng)
            #expect(batch.support.inputs.shape == [3, 2, 5, 5, 3] && batch.query.inputs.shape == [3, 4, 5, 5, 3])
            guard case let .labels(labels) = batch.query.targets else { Issue.record("labels expected"); return }
            #expect(labels == [0, 0, 1, 1, 0, 0, 1, 1, 0, 0, 1, 1])
            #expect(imageErrorMessage { try tasks.sample(tasks: 1, support: 2, query: 3, using: &rng) }
                == "class n01 has 4 images; a 2-shot task with 3 queries needs 5")
            #expect(throws: ShapeError.self) { try ImageSetTasks(dataset: tasks.dataset, ways: 4) }
        }
    }

    @Test func episodeFilesRoundTripAndGiveTheSameBatches() throws {
        try withTinyDataset { root in
            let tasks = try ImageSetTasks(dataset: ImageDataset(splitCSV: root + "/test.csv", images: root + "/images", imageSize: 4, channels: 3), ways: 3)
            var rng = RandomGenerator(seed: 11)
            let episodes = try (0..<5).map { _ in try tasks.drawEpisode(support: 1, query: 2, using: &rng) }
            let path = root + "/episodes.csv"
            try EpisodeFile.text(episodes, of: tasks.dataset).write(toFile: path, atomically: true, encoding: .utf8)
            let read = try EpisodeFile.read(path, dataset: tasks.dataset)
            #expect(read == episodes)
            #expect(tasks.batch(read[...]).query.inputs.scalars == tasks.batch(episodes[...]).query.inputs.scalars)
        }
    }

    @Test func refusesToListNamesTheFormatCannotHold() throws {
        try withTinyDataset { root in
            try FileManager.default.moveItem(atPath: root + "/train/n01/0.jpg", toPath: root + "/train/n01/a,b.jpg")
            let tasks = try ImageSetTasks(dataset: ImageDataset(classFolders: root + "/train", imageSize: 4, channels: 3), ways: 3)
            let episode = ImageEpisode(classes: [0, 1, 2], support: [[3], [0], [0]], query: [[0], [1], [1]])
            #expect(tasks.dataset.imageName(ofClass: 0, image: 3) == "a,b.jpg")
            #expect(imageErrorMessage { try EpisodeFile.text([episode], of: tasks.dataset) }
                == "\(root)/train: 'a,b.jpg' cannot be listed in an episode file: names with commas, quotes, line breaks or surrounding spaces cannot")
            let other = ImageEpisode(classes: [0, 1, 2], support: [[0], [0], [0]], query: [[1], [1], [1]])
            #expect(try EpisodeFile.text([other], of: tasks.dataset).hasPrefix("episode,class,role,file\n0,n01,support,1.jpg\n"))
        }
    }

    @Test func namesTheProblemInAnEpisodeFile() throws {
        try withTinyDataset { root in
            let data = try ImageDataset(classFolders: root + "/train", imageSize: 4, channels: 3)
            func message(_ text: String) throws -> String {
                try text.write(toFile: root + "/e.csv", atomically: true, encoding: .utf8)
                return imageErrorMessage { try EpisodeFile.read(root + "/e.csv", dataset: data) }
            }
            let h = "episode,class,role,file\n"
            #expect(try message("episode,class,file\n") == "\(root)/e.csv:1: the header must be 'episode,class,role,file'")
            #expect(try message(h) == "\(root)/e.csv: no episodes listed")
            #expect(try message(h + "0,n07,support,0.jpg\n") == "\(root)/e.csv:2: unknown class 'n07' (not in \(root)/train)")
            #expect(try message(h + "0,n01,train,0.jpg\n") == "\(root)/e.csv:2: role 'train' must be 'support' or 'query'")
            #expect(try message(h + "0,n01,support,9.jpg\n") == "\(root)/e.csv:2: class 'n01' has no image '9.jpg'")
            #expect(try message(h + "0,n01,support,0.jpg\n0,n01,query,0.jpg\n")
                == "\(root)/e.csv:3: image '0.jpg' of class 'n01' is listed twice in episode '0'")
            let good = "0,n01,support,0.jpg\n0,n01,query,1.jpg\n0,n02,support,0.jpg\n0,n02,query,1.jpg\n"
            #expect(try message(h + good + "1,n01,support,0.jpg\n1,n01,query,1.jpg\n")
                == "\(root)/e.csv:6: episode '1' has 1 classes; the first episode has 2")
            #expect(try message(h + good + "1,n01,support,0.jpg\n1,n01,query,1.jpg\n1,n02,support,0.jpg\n1,n02,support,1.jpg\n")
                == "\(root)/e.csv:6: episode '1': class n02 has 2 support and 0 query images; every class needs 1 and 1")
            let again = good.replacingOccurrences(of: "0,n0", with: "1,n0")
            #expect(try message(h + good + again + "0,n03,support,0.jpg\n")
                == "\(root)/e.csv:10: episode '0' continues after another episode; list its rows together")
            #expect(try message(h + "0,n01,support\n") == "\(root)/e.csv:2: row has 3 fields, header has 4")
        }
    }
}
