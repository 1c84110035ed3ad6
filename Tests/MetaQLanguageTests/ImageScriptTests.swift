import Foundation
import Testing
import MetaQEngine
import MetaQLanguage

/// The 'images' task block, the 'episodes' command and 'eval ... < episodes >' on small
/// datasets the tests write: a miniImageNet-style split CSV (DIR/test.csv, DIR/images/) and
/// class folders under a split folder (DIR/train/<class>/).
@Suite struct ImageScriptTests {
    private func dataset() throws -> String {
        let dir = NSTemporaryDirectory() + "metaq-image-scripts-\(UUID().uuidString)"
        let fm = FileManager.default
        try fm.createDirectory(atPath: dir + "/images", withIntermediateDirectories: true)
        var rows = ["filename,label"]
        for c in 0..<4 {
            let name = "n0\(c)"
            try fm.createDirectory(atPath: "\(dir)/train/\(name)", withIntermediateDirectories: true)
            for i in 0..<5 {
                var pixels: [Float] = []
                for p in 0..<(12 * 12) {
                    let stripe = Float((p / 12 + c) % 2)
                    pixels += [Float(c) / 3, Float(i) / 5, stripe]
                }
                let image = ColorImage(width: 12, height: 12, channels: 3, pixels: pixels)
                try Data(image.jpegData(quality: 90)).write(to: URL(fileURLWithPath: "\(dir)/train/\(name)/\(i).jpg"))
                try Data(image.pngData()).write(to: URL(fileURLWithPath: "\(dir)/images/\(name)_\(i).png"))
                rows.append("\(name)_\(i).png,\(name)")
            }
        }
        try (rows.joined(separator: "\n") + "\n").write(toFile: dir + "/test.csv", atomically: true, encoding: .utf8)
        return dir
    }

    private func run(_ text: String, in dir: String) -> (output: [String], errors: [String]) {
        let output = BufferedOutput()
        let source = SourceFile(name: dir + "/main.mq", text: text.replacingOccurrences(of: "DIR", with: dir))
        let diagnostics = Interpreter(output: output).run(source)
        return (output.lines, diagnostics.map(\.message))
    }

    @Test func trainsAndEvaluatesConv4OnRGBSplitsAndClassFolders() throws {
        let dir = try dataset()
        defer { try? FileManager.default.removeItem(atPath: dir) }
        let result = run("""
            seed 2
            tasks train = images < root "DIR" split "train" size 16 channels 3 ways 3 support 1 query 2 >
            tasks test = images < root "DIR" split "test" size 16 channels 3 ways 3 support 1 query 2 mean [0.5, 0.5, 0.5] std [0.25, 0.25, 0.25] >
            print train
            print test
            learner proto = protonet < model conv4 < size 16 channels 3 filters 4 > outer < lr 0.001 batch 1 > >
            learner maml = maml < model conv4 < size 16 channels 3 filters 4 out 3 > inner < steps 1 > outer < batch 2 > >
            train proto on train < iters 2 >
            train maml on train < iters 2 >
            let r = eval maml on test < tasks 4 steps [1] >
            print r.rows[0].tasks
            """, in: dir)
        #expect(result.errors == [])
        #expect(result.output.count == 3, "\(result.output)")
        #expect(result.output.first?.contains("3-way 1-shot, 4 classes, 20 images of 16 x 16 x 3 from \(dir)/train") == true, "\(result.output)")
        #expect(result.output.dropFirst().first?.contains("20 images of 16 x 16 x 3 from \(dir)/test.csv") == true, "\(result.output)")
        #expect(result.output.last == "4")
    }

    @Test func listedEpisodesScoreTheSameTasksEveryRun() throws {
        let dir = try dataset()
        defer { try? FileManager.default.removeItem(atPath: dir) }
        let script = """
            tasks test = images < root "DIR" split "test" size 16 ways 3 support 1 query 2 >
            learner proto = protonet < model conv4 < size 16 channels 3 filters 4 > >
            let n = episodes test < file "DIR/episodes.csv" count 7 seed 5 >
            print n
            seed SEED
            let r = eval proto on test < episodes "DIR/episodes.csv" steps [0, 1] batch 3 scores "DIR/scores.csv" >
            print r.rows[0].tasks
            print r.rows[0].mean
            """
        let first = run(script.replacingOccurrences(of: "SEED", with: "1"), in: dir)
        let text = try String(contentsOfFile: dir + "/episodes.csv", encoding: .utf8)
        let second = run(script.replacingOccurrences(of: "SEED", with: "99"), in: dir)
        #expect(first.errors == [] && second.errors == [])
        #expect(first.output.prefix(2) == ["7", "7"])
        // The same seed writes the same file; the same model weights (declaration order,
        // session seed 0) score the same listed episodes whatever the session seed after.
        #expect(try String(contentsOfFile: dir + "/episodes.csv", encoding: .utf8) == text)
        #expect(first.output == second.output)
        #expect(text.hasPrefix("episode,class,role,file\n0,n0"))
        #expect(text.split(separator: "\n").count == 1 + 7 * 3 * 3)
        // One score per episode and step count, whose mean is the report's.
        let scores = try String(contentsOfFile: dir + "/scores.csv", encoding: .utf8).split(separator: "\n")
        #expect(scores.first == "episode,steps,accuracy" && scores.count == 1 + 7 * 2)
        #expect(scores.dropFirst().prefix(2).map { $0.split(separator: ",").prefix(2).joined(separator: ",") } == ["0,0", "0,1"])
        let zeroStep = scores.dropFirst().filter { $0.split(separator: ",")[1] == "0" }.map { Double($0.split(separator: ",")[2])! }
        let mean = zeroStep.reduce(0, +) / 7
        #expect(abs(mean - Double(first.output[2])!) < 1e-6, "\(mean) vs \(first.output)")
    }

    @Test func givesClearErrors() throws {
        let dir = try dataset()
        defer { try? FileManager.default.removeItem(atPath: dir) }
        func error(_ text: String) -> String { run(text, in: dir).errors.first ?? "no error" }
        #expect(error(#"tasks t = images < root "DIR" split "val" >"#)
            == "split 'val': neither \(dir)/val.csv nor the folder \(dir)/val exists")
        #expect(error(#"tasks t = images < root "DIR" split "test" channels 2 >"#) == "'channels' must be 1 (gray) or 3 (RGB), got 2")
        #expect(error(#"tasks t = images < root "DIR" split "test" mean [0.5] >"#) == "'mean' needs 3 numbers, one per channel; got 1")
        #expect(error(#"tasks t = images < root "DIR" split "test" std [1, 0, 1] >"#) == "'std' values must be positive")
        #expect(error(#"tasks t = images < root "DIR" split "test" ways 3 support 3 query 3 >"#)
            == "class n00 has 5 images; a 3-shot task with 3 queries needs 6")
        #expect(error(#"tasks t = images < root "DIR" split "test" ways 5 >"#)
            == "a 5-way task needs at least 5 classes; \(dir)/test.csv has 4")
        #expect(error(#"tasks t = images < root "DIR/nowhere" >"#) == "missing folder: \(dir)/nowhere")
        #expect(error(#"tasks t = images < root "DIR" >"#) == "\(dir) holds split files (test.csv): give 'split', e.g. split \"test\"")
        #expect(error(#"tasks t = images < root "DIR/train" size 8 ways 4 query 2 >"#) == "no error")
        let evalPrefix = """
            tasks t = images < root "DIR" split "test" size 16 ways 3 support 1 query 2 >
            learner p = protonet < model conv4 < size 16 channels 3 filters 4 > >

            """
        // A ProtoNet embedding of 1 input channel on RGB images: an error, not a crash.
        #expect(error(evalPrefix + "learner g = protonet < model conv4 < size 16 channels 1 filters 4 > >\nlet r = eval g on t < tasks 2 >")
            .hasPrefix("model does not fit images inputs of shape [16, 16, 3]"))
        #expect(error(evalPrefix + "learner g = protonet < model conv4 < size 16 channels 1 filters 4 > >\ntrain g on t < iters 1 >")
            .hasPrefix("model does not fit images inputs of shape [16, 16, 3]"))
        #expect(error(evalPrefix + #"let r = eval p on t < episodes "DIR/none.csv" >"#).hasPrefix("\(dir)/none.csv: cannot read"))
        #expect(error(evalPrefix + #"let r = eval p on t < episodes "DIR/test.csv" >"#)
            == "\(dir)/test.csv:1: the header must be 'episode,class,role,file'")
        try "episode,class,role,file\n0,n00,support,n00_0.png\n0,n00,query,n00_1.png\n0,n01,support,n01_0.png\n0,n01,query,n01_1.png\n"
            .write(toFile: dir + "/two.csv", atomically: true, encoding: .utf8)
        #expect(error(evalPrefix + #"let r = eval p on t < episodes "DIR/two.csv" >"#)
            == "\(dir)/two.csv lists 2-way episodes; the tasks are 3-way")
        #expect(error(evalPrefix + #"let r = eval p on t < tasks 5 scores "DIR/s.csv" >"#)
            == "'scores' lists the score of each listed episode: it needs 'episodes'")
        #expect(error(evalPrefix + #"let r = eval p on t < episodes "DIR/two.csv" tasks 5 >"#)
            == "'tasks' cannot be given with 'episodes': the file sets the episodes and their images")
        #expect(error("""
            tasks s = sinusoid < >
            learner m = maml < model mlp < in 1 out 1 > >
            let r = eval m on s < episodes "DIR/two.csv" >
            """) == "'episodes' lists images; these are sinusoid tasks (use an 'images' block)")
        #expect(error("tasks s = sinusoid < >\nepisodes s < file \"DIR/e.csv\" >").hasPrefix("'episodes' needs image tasks"))
        // A file that is not an image, and a truncated JPEG, named in the error.
        try Data("filename,label\n".utf8).write(to: URL(fileURLWithPath: dir + "/train/n01/9.jpg"))
        #expect(error(#"tasks t = images < root "DIR" split "train" size 8 query 2 ways 3 >"#)
            == "\(dir)/train/n01/9.jpg: not a PNG or JPEG image (unknown signature)")
        let jpeg = try Data(contentsOf: URL(fileURLWithPath: dir + "/train/n02/0.jpg"))
        try jpeg.prefix(jpeg.count / 2).write(to: URL(fileURLWithPath: dir + "/train/n01/9.jpg"))
        #expect(error(#"tasks t = images < root "DIR" split "train" size 8 query 2 ways 3 >"#)
            .hasPrefix("\(dir)/train/n01/9.jpg: corrupt JPEG"))
        #expect(error(evalPrefix + #"episodes t < file "DIR/e.csv" count 1000001 >"#).contains("'count'"))
        // An absolute images folder is taken as it is.
        #expect(error(#"tasks t = images < root "DIR" split "test" images "DIR/images" size 8 ways 3 query 2 >"#) == "no error")
        #expect(error(#"tasks t = images < root "DIR" split "test" images "/nowhere/images" size 8 ways 3 query 2 >"#) == "missing folder: /nowhere/images")
    }

    @Test func evaluatesAFolderOfFixedEpisodes() throws {
        let dir = try dataset()
        defer { try? FileManager.default.removeItem(atPath: dir) }
        try writeEpisodes(in: dir + "/fixed", names: ["1", "2", "10"], ways: 3)
        let result = run("""
            tasks test = images < root "DIR" split "test" size 16 ways 3 support 1 query 2 >
            learner proto = protonet < model conv4 < size 16 channels 3 filters 4 > >
            let r = eval proto on test < episodes "DIR/fixed" steps [0] scores "DIR/scores.csv" >
            print r.rows[0].tasks
            print r.episodes
            print r.rows[0].scores.length
            print r.rows[0].mean
            print r.rows[0].ci95
            print r.rows[0].scores
            """, in: dir)
        #expect(result.errors == [])
        #expect(result.output.prefix(3) == ["3", "[\"1\", \"2\", \"10\"]", "3"], "\(result.output)")
        // The mean and 95% interval are those of the per-episode scores.
        let scores = try String(contentsOfFile: dir + "/scores.csv", encoding: .utf8).split(separator: "\n")
        #expect(scores.first == "episode,steps,accuracy" && scores.count == 4)
        #expect(scores.dropFirst().map { String($0.split(separator: ",")[0]) } == ["1", "2", "10"])
        let values = scores.dropFirst().map { Double($0.split(separator: ",")[2])! }
        let mean = values.reduce(0, +) / 3
        let sd = (values.map { ($0 - mean) * ($0 - mean) }.reduce(0, +) / 2).squareRoot()
        #expect(abs(mean - Double(result.output[3])!) < 1e-6, "\(values) vs \(result.output)")
        #expect(abs(1.96 * sd / 3.0.squareRoot() - Double(result.output[4])!) < 1e-6, "\(values) vs \(result.output)")
    }

    @Test func cachesDecodedImagesWhereAsked() throws {
        let dir = try dataset()
        defer { try? FileManager.default.removeItem(atPath: dir) }
        let fm = FileManager.default
        let load = #"tasks t = images < root "DIR" split "train" size 8 ways 3 query 2 KEYS >"# + "\nprint t"
        #expect(run(load.replacingOccurrences(of: "KEYS", with: "cache false"), in: dir).errors == [])
        #expect(!fm.fileExists(atPath: dir + "/train/.metaq-cache"))
        let first = run(load.replacingOccurrences(of: "KEYS", with: ""), in: dir)
        #expect(first.errors == [])
        #expect(try fm.contentsOfDirectory(atPath: dir + "/train/.metaq-cache").count == 1)
        let second = run(load.replacingOccurrences(of: "KEYS", with: ""), in: dir)
        #expect(second.errors == [])
        let cacheFile = try fm.contentsOfDirectory(atPath: dir + "/train/.metaq-cache")[0]
        #expect(first.output.first?.hasSuffix("; decoded and cached in \(dir)/train/.metaq-cache/\(cacheFile)") == true, "\(first.output)")
        #expect(second.output.first?.hasSuffix("; mapped from the cache \(dir)/train/.metaq-cache/\(cacheFile)") == true, "\(second.output)")
        #expect(run(load.replacingOccurrences(of: "KEYS", with: "cache false"), in: dir).output.first?.hasSuffix("from \(dir)/train") == true)
        #expect(run(load.replacingOccurrences(of: "KEYS", with: #"cache_dir "DIR/elsewhere""#), in: dir).errors == [])
        #expect(try fm.contentsOfDirectory(atPath: dir + "/elsewhere").count == 1)
        #expect(run(load.replacingOccurrences(of: "KEYS", with: #"cache false cache_dir "DIR/c""#), in: dir).errors
            == ["'cache_dir' cannot be given with 'cache false'"])
    }

    @Test func namesTheFileAtFaultInImagesAndEpisodes() throws {
        let dir = try dataset()
        defer { try? FileManager.default.removeItem(atPath: dir) }
        func error(_ text: String) -> String { run(text, in: dir).errors.first ?? "no error" }
        // A split CSV naming a file that is not there.
        try "filename,label\nn00_0.png,n00\nn00_9.png,n00\n".write(toFile: dir + "/val.csv", atomically: true, encoding: .utf8)
        #expect(error(#"tasks t = images < root "DIR" split "val" >"#)
            == "\(dir)/val.csv:3: image 'n00_9.png' is in neither \(dir)/images/n00_9.png nor \(dir)/images/n00/n00_9.png")
        // An image that is not an image, in a split CSV.
        try Data("GIF89a".utf8).write(to: URL(fileURLWithPath: dir + "/images/n00_9.png"))
        #expect(error(#"tasks t = images < root "DIR" split "val" >"#) == "\(dir)/images/n00_9.png: not a PNG or JPEG image (unknown signature)")
        let prefix = """
            tasks t = images < root "DIR" split "test" size 16 ways 3 support 1 query 2 >
            learner p = protonet < model conv4 < size 16 channels 3 filters 4 > >

            """
        try writeEpisodes(in: dir + "/fixed", names: ["a", "b"], ways: 3)
        #expect(error(prefix + #"let r = eval p on t < episodes "DIR/fixed" >"#) == "no error")
        // An episode class without query images.
        for i in 0..<2 { try FileManager.default.removeItem(atPath: "\(dir)/fixed/b/c1/query_\(i).png") }
        #expect(error(prefix + #"let r = eval p on t < episodes "DIR/fixed" >"#)
            == "\(dir)/fixed/b/c1: no query images (PNG or JPEG files named query*)")
        // An image that is not an image, in an episode.
        try Data("text".utf8).write(to: URL(fileURLWithPath: "\(dir)/fixed/b/c1/query_0.jpg"))
        try Data("text".utf8).write(to: URL(fileURLWithPath: "\(dir)/fixed/b/c1/query_1.jpg"))
        #expect(error(prefix + #"let r = eval p on t < episodes "DIR/fixed" >"#)
            == "\(dir)/fixed/b/c1/query_0.jpg: not a PNG or JPEG image (unknown signature)")
        // Episodes with another number of ways than the tasks, and than a MAML learner's outputs.
        try FileManager.default.removeItem(atPath: dir + "/fixed")
        try writeEpisodes(in: dir + "/fixed", names: ["a", "b"], ways: 2)
        #expect(error(prefix + #"let r = eval p on t < episodes "DIR/fixed" >"#) == "\(dir)/fixed holds 2-way episodes; the tasks are 3-way")
        #expect(error("""
            tasks t = images < root "DIR" split "test" size 16 ways 2 support 1 query 2 >
            learner m = maml < model conv4 < size 16 channels 3 filters 4 out 3 > >
            let r = eval m on t < episodes "DIR/fixed" >
            """) == "model output [3] does not fit images tasks, which need 2 outputs")
        #expect(error(prefix + #"let r = eval p on t < episodes "DIR/nowhere" >"#).hasPrefix("\(dir)/nowhere: cannot read"))
    }

    /// Fixed episodes under `folder`: each of `names` an episode of `ways` classes c0, c1, ...
    /// with one support and two query PNG images of 12 x 12.
    private func writeEpisodes(in folder: String, names: [String], ways: Int) throws {
        for (e, name) in names.enumerated() {
            for c in 0..<ways {
                let path = "\(folder)/\(name)/c\(c)"
                try FileManager.default.createDirectory(atPath: path, withIntermediateDirectories: true)
                for file in ["support_0", "query_0", "query_1"] {
                    var pixels: [Float] = []
                    for p in 0..<144 {
                        let stripe = Float((p / 12 + c) % 2)
                        pixels += [Float(c) / 3, Float(e) / 4, stripe]
                    }
                    let image = ColorImage(width: 12, height: 12, channels: 3, pixels: pixels)
                    try Data(image.pngData()).write(to: URL(fileURLWithPath: "\(path)/\(file).png"))
                }
            }
        }
    }
}
