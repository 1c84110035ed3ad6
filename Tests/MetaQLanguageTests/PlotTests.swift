import Foundation
#if canImport(FoundationXML)
import FoundationXML
#endif
import Testing
@testable import MetaQEngine
@testable import MetaQLanguage

/// An SVG file read back with an XML parser: its elements in order, with their attributes and text.
struct ParsedSVG {
    struct Element { var name: String; var attributes: [String: String]; var text: String }
    var elements: [Element] = []

    func texts() -> [String] { elements.filter { $0.name == "text" }.map(\.text) }
    func all(_ name: String) -> [Element] { elements.filter { $0.name == name } }
    func number(_ e: Element, _ key: String) -> Double { Double(e.attributes[key] ?? "") ?? .nan }
}

private final class Collector: NSObject, XMLParserDelegate {
    var result = ParsedSVG()
    var open: [Int] = []
    func parser(_ parser: XMLParser, didStartElement name: String, namespaceURI: String?, qualifiedName: String?, attributes: [String: String] = [:]) {
        result.elements.append(.init(name: name, attributes: attributes, text: ""))
        open.append(result.elements.count - 1)
    }
    func parser(_ parser: XMLParser, didEndElement name: String, namespaceURI: String?, qualifiedName: String?) { open.removeLast() }
    func parser(_ parser: XMLParser, foundCharacters string: String) {
        // An element's text includes its children's (a rectangle's <title>).
        for i in open { result.elements[i].text += string }
    }
}

/// Parses `svg` as XML; fails the test (and returns nil) when it is not well-formed.
func parseSVG(_ svg: String, sourceLocation: Testing.SourceLocation = #_sourceLocation) -> ParsedSVG? {
    let parser = XMLParser(data: Data(svg.utf8))
    let collector = Collector()
    parser.delegate = collector
    guard parser.parse() else {
        Issue.record("not well-formed XML: \(parser.parserError.map { "\($0)" } ?? "?") (line \(parser.lineNumber))\n\(svg.prefix(400))", sourceLocation: sourceLocation)
        return nil
    }
    #expect(collector.result.elements.first?.name == "svg", sourceLocation: sourceLocation)
    return collector.result
}

/// Every kind of plot, drawn by scripts and from reports made here, parsed as XML.
@Suite struct PlotTests {
    private func scratch() -> String {
        let path = NSTemporaryDirectory() + "metaq-plots-\(UUID().uuidString)"
        try? FileManager.default.createDirectory(atPath: path, withIntermediateDirectories: true)
        return path
    }

    /// Runs `text` (DIR replaced by a temporary folder) and returns each `name` it plotted to DIR/name.svg, parsed.
    private func plots(_ text: String, _ names: [String], sourceLocation: Testing.SourceLocation = #_sourceLocation) -> [String: ParsedSVG] {
        let dir = scratch()
        defer { try? FileManager.default.removeItem(atPath: dir) }
        let source = SourceFile(name: dir + "/main.mq", text: text.replacingOccurrences(of: "DIR", with: dir))
        let diagnostics = Interpreter(output: BufferedOutput()).run(source)
        #expect(diagnostics.map(\.message) == [], sourceLocation: sourceLocation)
        var out: [String: ParsedSVG] = [:]
        for name in names {
            guard let svg = try? String(contentsOfFile: "\(dir)/\(name).svg", encoding: .utf8) else {
                Issue.record("no \(name).svg", sourceLocation: sourceLocation)
                continue
            }
            if let keep = ProcessInfo.processInfo.environment["METAQ_PLOT_DIR"] {
                try? svg.write(toFile: "\(keep)/\(name).svg", atomically: true, encoding: .utf8)
            }
            out[name] = parseSVG(svg, sourceLocation: sourceLocation)
        }
        return out
    }

    /// The right edge of the plot area (the frame rectangle with a stroke and no fill).
    private func plotRight(_ p: ParsedSVG) -> Double {
        let frame = p.all("rect").first { $0.attributes["fill"] == "none" && $0.attributes["stroke"] != nil }!
        return p.number(frame, "x") + p.number(frame, "width")
    }

    @Test func trainingLogEvalReportsAndSeveralLearners() {
        let p = plots("""
            seed 1
            tasks sine = sinusoid < support 5 query 5 >
            learner a = maml < model mlp < in 1 hidden [8] out 1 > >
            learner b = reptile < model mlp < in 1 hidden [8] out 1 > >
            let log = train a on sine < iters 30 log_every 2 >
            train b on sine < iters 10 >
            plot log to "DIR/log.svg"
            let ra = eval a on sine < tasks 5 steps [0, 1, 3] >
            let rb = eval b on sine < tasks 5 steps [0, 1, 3] >
            plot ra to "DIR/eval.svg"
            plot [ra, rb] to "DIR/evals.svg"
            let named = < maml ra reptile rb >
            plot named to "DIR/named.svg"
            """, ["log", "eval", "evals", "named"])
        if let log = p["log"] {
            #expect(log.texts().contains("Training loss"))
            #expect(log.texts().contains("loss") && log.texts().contains("smoothed"))
            #expect(log.texts().contains("iteration"))
            // 15 windows of 2 iterations: the last point is at iteration 30.
            #expect(log.texts().contains("30"))
            #expect(log.all("polyline").filter { !$0.text.isEmpty }.count == 2, "raw and smoothed (legend lines have no title)")
        }
        if let eval = p["eval"] {
            #expect(eval.all("polygon").count == 1, "a 95% band")
            #expect(eval.texts().contains("adaptation steps"))
        }
        for name in ["evals", "named"] {
            guard let chart = p[name] else { continue }
            #expect(chart.all("polygon").count == 2)
            let labels = name == "named" ? ["maml", "reptile"] : ["learner 0", "learner 1"]
            let right = plotRight(chart)
            for label in labels {
                let legend = chart.all("text").filter { $0.text == label }
                #expect(legend.count == 1, "legend entry \(label)")
                // The legend sits to the right of the data, not on its lines.
                #expect(legend.allSatisfy { chart.number($0, "x") > right })
            }
        }
    }

    /// Episodes from rollout in navigation2d: one path per task (its first episode) and its goal.
    @Test func trajectoriesWithTheirGoals() {
        let p = plots("""
            env nav = navigation2d < horizon 15 >
            model net = mlp < in 2 out 2 >
            let g = generator(2)
            let goals = env_tasks(nav, 3, g)
            let tr = rollout(nav, fn(o) -> net(o) * 0 + 0.2, goals, 2, g, full([2], -3))
            plot tr to "DIR/paths.svg"
            """, ["paths"])
        guard let paths = p["paths"] else { return }
        #expect(paths.texts().contains("trajectories and goals"))
        #expect(paths.all("polyline").count >= 3)
        #expect(paths.texts().contains("task 2"))
        #expect(paths.texts().contains { $0.contains("the first episode of each of the 3 tasks") })
        // A family written in metaq whose first two task parameters are the goal (of four).
        let q = plots("""
            import "metaq/envs"
            let turned = turned_navigation < horizon 15 >
            model net = mlp < in 2 out 2 >
            let g = generator(2)
            let tr = rollout(turned, fn(o) -> net(o) * 0 + 0.2, env_tasks(turned, 2, g), 2, g, full([2], -3))
            plot tr to "DIR/turned.svg"
            """, ["turned"])
        guard let turned = q["turned"] else { return }
        #expect(turned.all("polyline").count >= 2)
        #expect(turned.texts().contains { $0.contains("the first two of each task's 4 parameters") })
    }

    @Test func numbersRecordsAndLists() {
        let p = plots("""
            plot [3, 1, 4, 1, 5] to "DIR/list.svg"
            plot [7] to "DIR/one.svg"
            let bars = < maml 0.5 anil 0.7 reptile -0.2 >
            plot bars to "DIR/bars.svg"
            let lines = < train [1, 2, 3] test [2, 3, 5] >
            plot lines to "DIR/lines.svg"
            plot [< step 1 loss 2.0 acc 0.1 >, < step 2 loss 1.5 acc 0.3 >, < step 4 loss 1.0 acc 0.6 >] to "DIR/records.svg"
            plot [< x 2 y 1 >, < x 1 y 3 >, < x 3 y 2 >, < x 0 y 0 >] to "DIR/scatter.svg"
            """, ["list", "one", "bars", "lines", "records", "scatter"])
        if let scatter = p["scatter"] {
            // x out of order: four points, no line through them.
            #expect(scatter.all("circle").count == 4)
            #expect(scatter.all("polyline").isEmpty)
            #expect(scatter.texts().contains("4 points (x is not in increasing order, so they are not joined)"))
        }
        // In order, the same records are a line.
        #expect(p["records"]?.all("polyline").isEmpty == false)
        #expect(p["list"]?.all("circle").count == 5)
        // A single point is drawn as a marker.
        #expect(p["one"]?.all("circle").count == 1)
        if let bars = p["bars"] {
            #expect(bars.all("rect").filter { $0.attributes["fill"] == SVG.palette[0] }.count == 3)
            #expect(bars.texts().contains("reptile") && bars.texts().contains("-0.2"))
        }
        #expect(p["lines"]?.texts().contains("train") == true)
        #expect(p["lines"]?.texts().contains("test") == true)
        if let records = p["records"] {
            #expect(records.texts().contains("loss, acc against step"))
            #expect(records.texts().contains("step"))
        }
    }

    @Test func lifelongAndOnlineFromScripts() {
        let p = plots("""
            seed 2
            tasks sine = sinusoid < support 4 query 4 >
            stream s = stream < tasks sine count 3 pool 8 support 4 query 4 >
            learner c = finetune < model mlp < in 1 hidden [8] out 1 > steps 2 >
            let r = lifelong c on s < eval_steps 1 >
            plot r to "DIR/lifelong.svg"
            learner m = maml < model mlp < in 1 hidden [8] out 1 > >
            let o = online m on s < meta_steps 2 max_steps 3 proficiency 0.001 >
            plot o to "DIR/online.svg"
            """, ["lifelong", "online"])
        if let l = p["lifelong"] {
            #expect(l.texts().contains("task 2"), "per-task lines are labelled")
            #expect(l.texts().contains("after learning task i"))
        }
        if let o = p["online"] {
            #expect(o.texts().contains { $0.contains("<= 0.001") })
            #expect(o.texts().contains("never"))
        }
    }

    private func report(_ matrix: [[Double]]) -> ContinualReport {
        ContinualReport(method: "naive <x>", taskNames: matrix.indices.map { "t\($0)" }, metric: "mse", higherIsBetter: false,
                        matrix: matrix, initial: matrix.map { _ in 1 }, seconds: 0)
    }

    @Test func heatMapHasAColourScaleAndIgnoresAnOutlier() throws {
        var matrix = (0..<6).map { i in (0..<6).map { j in 0.1 + 0.02 * Double(i + j) } }
        matrix[5][0] = 1000
        let svg = try #require(parseSVG(Plot.lifelong(report(matrix))))
        #expect(svg.texts().contains { $0.hasPrefix("≥ ") }, "the scale says its top is clipped")
        #expect(svg.texts().contains { $0.contains("outlying value") })
        let cells = svg.all("rect").filter { $0.text.hasPrefix("R[") }
        #expect(cells.count == 36)
        // Without the outlier's pull, the 35 ordinary cells spread over many colours.
        let fills = Set(cells.filter { !$0.text.hasPrefix("R[5][0]") }.compactMap { $0.attributes["fill"] })
        #expect(fills.count >= 8)
        // The colour scale: many small rectangles beside the map.
        #expect(svg.all("rect").count >= 36 + 40)
        // A task learned last has one point: it is drawn as a marker.
        #expect(svg.all("circle").contains { ($0.text).hasPrefix("task 5 after learning 5") })
    }

    @Test func emptyAndNonFiniteReportsStillDraw() {
        // A lifelong or online run interrupted before its first task, and NaN scores.
        #expect(parseSVG(Plot.lifelong(report([]))) != nil)
        #expect(parseSVG(Plot.lifelong(report([[.nan, 1], [2, .infinity]]))) != nil)
        let r = OnlineReport(metric: "accuracy", higherIsBetter: true, proficiency: 0.9, maximumSteps: 5, before: [], after: [],
                             adaptationSteps: 1, stepsToProficiency: [], scratchStepsToProficiency: [], scratchAfter: [], seconds: 0)
        #expect(parseSVG(Plot.online(r)) != nil)
        #expect(parseSVG(Plot.numbers([("", [1, .nan, 3])], title: "a & b")) != nil)
    }

    @Test func onlineRunsThatNeverReachTheTargetAreMarked() throws {
        let r = OnlineReport(metric: "mse", higherIsBetter: false, proficiency: 0.5, maximumSteps: 10, before: [1, 1, 1], after: [1, 1, 1],
                             adaptationSteps: 5, stepsToProficiency: [3, 11, 2], scratchStepsToProficiency: [11, 11, 9], scratchAfter: [1, 1, 1], seconds: 0)
        let svg = try #require(parseSVG(Plot.online(r)))
        #expect(svg.texts().contains("SGD steps to reach mse <= 0.5, per arriving task"))
        #expect(svg.texts().contains("never reached within 10 steps"))
        #expect(svg.texts().contains { $0.contains("1 of 3 tasks from the meta-learned start, 2 from scratch") })
        // 3 crosses (1 + 2), with the legend's two.
        #expect(svg.all("path").count == 5)
        let right = plotRight(svg)
        for label in ["from the meta-learned start", "from scratch"] {
            #expect(svg.all("text").filter { $0.text == label }.allSatisfy { svg.number($0, "x") > right })
        }
    }

    @Test func escapingAndTicks() {
        #expect(SVG.escape("a <= b & \"c\" 'd'") == "a &lt;= b &amp; &quot;c&quot; &apos;d&apos;")
        #expect(Scale.ticks(0, 1) == [0, 0.2, 0.4, 0.6, 0.8, 1])
        #expect(Scale.ticks(0, 30, count: 6, integers: true) == [0, 5, 10, 15, 20, 25, 30])
        #expect(Scale.robustRange([1, 2, 3, 4, 1000]).hi < 20)
        #expect(SVG.label(0.30000000000000004) == "0.3")
    }

    @Test func whatCannotBeDrawnIsSaid() {
        let dir = scratch()
        defer { try? FileManager.default.removeItem(atPath: dir) }
        func errors(_ text: String) -> [String] {
            Interpreter(output: BufferedOutput()).run(SourceFile(name: dir + "/m.mq", text: text)).map(\.message)
        }
        #expect(errors("model n = mlp < in 1 out 1 >\nplot n to \"\(dir)/a.svg\"") == ["'plot' cannot draw a model"])
        #expect(errors("plot [] to \"\(dir)/a.svg\"") == ["'plot' cannot draw an empty list"])
        // Outside a notebook a plot needs a file.
        #expect(errors("plot [1, 2]") == ["'plot' needs 'to \"file.svg\"'"])
        #expect(errors("plot [\"a\"] to \"\(dir)/a.svg\"") == ["'plot' cannot draw a list of strings (it draws lists of numbers, records, eval reports or training logs)"])
    }

    /// Class folders DIR/<class>/<i>.png of `side` x `side` images, gray or RGB, each class
    /// its own shade, written with the engine's PNG encoder.
    private func imageFolders(_ dir: String, classes: Int, perClass: Int, side: Int, channels: Int) throws {
        for c in 0..<classes {
            try FileManager.default.createDirectory(atPath: "\(dir)/data/class\(c)", withIntermediateDirectories: true)
            for i in 0..<perClass {
                let pixels = (0..<(side * side)).flatMap { p -> [Float] in
                    let v = Float(c + 1) / Float(classes + 1) * Float((p / side + i) % 2)
                    return channels == 1 ? [v] : [v, Float(i) / Float(perClass), 1 - v]
                }
                let image = ColorImage(width: side, height: side, channels: channels, pixels: pixels)
                try Data(image.pngData()).write(to: URL(fileURLWithPath: "\(dir)/data/class\(c)/\(i).png"))
            }
        }
    }

    /// The PNG embedded in an <image>: its width, height and colour type (0 gray, 2 RGB).
    private func embedded(_ e: ParsedSVG.Element) -> (width: Int, height: Int, colour: Int)? {
        guard let href = e.attributes["href"], href.hasPrefix("data:image/png;base64,"),
              let data = Data(base64Encoded: String(href.dropFirst("data:image/png;base64,".count))), data.count > 26 else { return nil }
        let b = [UInt8](data)
        guard b.prefix(8) == [137, 80, 78, 71, 13, 10, 26, 10] else { return nil }
        func u32(_ i: Int) -> Int { Int(b[i]) << 24 | Int(b[i + 1]) << 16 | Int(b[i + 2]) << 8 | Int(b[i + 3]) }
        return (u32(16), u32(20), Int(b[25]))
    }

    @Test func aTasksSupportAndQueryImagesWithTheirLabels() throws {
        let dir = scratch()
        defer { try? FileManager.default.removeItem(atPath: dir) }
        try imageFolders(dir, classes: 4, perClass: 4, side: 8, channels: 3)
        let p = plots("""
            seed 1
            tasks gray = images < root "\(dir)/data" size 8 channels 1 ways 3 support 2 query 1 >
            tasks rgb = images < root "\(dir)/data" size 8 channels 3 ways 3 support 1 query 2 mean [0.5, 0.5, 0.5] std [0.5, 0.5, 0.5] >
            let b = sample(gray, 1)
            plot b to "DIR/task.svg"
            plot b.support to "DIR/split.svg"
            let two = sample(rgb, 2)
            plot two to "DIR/rgb.svg"
            """, ["task", "split", "rgb"])
        let task = try #require(p["task"])
        let images = task.all("image")
        // 3 ways x (2 support + 1 query) images, each a gray 64 x 64 PNG (8 pixels, enlarged 8 times).
        #expect(images.count == 9)
        #expect(images.allSatisfy { embedded($0).map { $0 == (64, 64, 0) } ?? false }, "\(images.map(embedded))")
        #expect(task.texts().contains("A task: support and query images with their labels"))
        #expect(task.texts().contains("support: 6 images, 3 classes"))
        #expect(task.texts().contains("query: 3 images"))
        // Each image's label under it: class 0, 1, 2 twice in the support set and once in the query set.
        for label in ["0", "1", "2"] { #expect(task.all("text").filter { $0.text == label }.count == 3, "label \(label)") }
        #expect(!task.texts().contains { $0.contains("of 1 tasks") })
        // Support above query: every support image is above the query title, every query image below it.
        let queryTitle = try #require(task.all("text").first { $0.text == "query: 3 images" })
        let titleY = task.number(queryTitle, "y")
        let support = images.filter { $0.text.hasPrefix("support") }, query = images.filter { $0.text.hasPrefix("query") }
        #expect(support.count == 6 && query.count == 3)
        #expect(support.allSatisfy { task.number($0, "y") + task.number($0, "height") < titleY })
        #expect(query.allSatisfy { task.number($0, "y") > titleY })
        // Set apart: each section on its own tinted rectangle.
        #expect(task.all("rect").filter { ["#f3f6fb", "#fbf5ef"].contains($0.attributes["fill"] ?? "") }.count == 2)
        // One column per class: the two support images of class 0 share their x.
        #expect(support[0].attributes["x"] == support[1].attributes["x"] && support[0].attributes["x"] != support[2].attributes["x"])

        let split = try #require(p["split"])
        #expect(split.all("image").count == 6)
        #expect(split.texts().contains("6 images with their labels"))

        let rgb = try #require(p["rgb"])
        #expect(rgb.all("image").count == 3 + 6)
        #expect(rgb.all("image").allSatisfy { embedded($0)?.colour == 2 }, "RGB images are RGB PNGs")
        #expect(rgb.texts().contains("the first of 2 tasks"))
        // Normalised inputs (mean 0.5, sd 0.5: -1...1) are scaled to black..white, and said so.
        #expect(rgb.texts().contains { $0.hasPrefix("values from -1 to 1") })
    }

    @Test func tensorsOfImagesAsAGrid() throws {
        let p = plots("""
            let g = generator(3)
            plot rand(g, [5, 6, 7]) to "DIR/gray.svg"
            plot rand(g, [4, 6, 6, 3]) to "DIR/rgb.svg"
            plot rand(g, [2, 3, 5, 5, 1]) to "DIR/tasks.svg"
            plot rand(g, [6, 6, 3]) to "DIR/one.svg"
            plot randn(g, [401, 2, 2]) to "DIR/many.svg"
            """, ["gray", "rgb", "tasks", "one", "many"])
        let gray = try #require(p["gray"])
        #expect(gray.all("image").count == 5)
        // 6 x 7 pixels enlarged by whole pixels (toward 64, at most 8 times), gray; labelled by index.
        #expect(gray.all("image").allSatisfy { embedded($0).map { $0 == (56, 48, 0) } ?? false }, "\(gray.all("image").map(embedded))")
        #expect((0..<5).allSatisfy { i in gray.texts().contains("\(i)") })
        #expect(gray.texts().contains("5 images"))
        #expect(!gray.texts().contains { $0.hasPrefix("values from") }, "values in 0..1 are drawn as they are")
        let rgb = try #require(p["rgb"])
        #expect(rgb.all("image").count == 4 && rgb.all("image").allSatisfy { embedded($0)?.colour == 2 })
        let tasks = try #require(p["tasks"])
        #expect(tasks.all("image").count == 6 && tasks.texts().contains("task 0") && tasks.texts().contains("task 1"))
        #expect(p["one"]?.all("image").count == 1)
        let many = try #require(p["many"])
        #expect(many.all("image").count == 400)
        #expect(many.texts().contains("400 of 401 images drawn"))
        #expect(many.texts().contains { $0.hasPrefix("values from -") })
    }

    @Test func imagePlotsSayWhatTheyCannotDraw() {
        let dir = scratch()
        defer { try? FileManager.default.removeItem(atPath: dir) }
        func errors(_ text: String) -> [String] {
            Interpreter(output: BufferedOutput()).run(SourceFile(name: dir + "/m.mq", text: text)).map(\.message)
        }
        #expect(errors("plot zeros([2, 3, 4, 5]) to \"\(dir)/a.svg\"")
            == ["'plot' cannot draw a tensor of shape [2, 3, 4, 5] (images are [H, W], [H, W, C], [N, H, W], [N, H, W, C] or [tasks, N, H, W, C], C 1 or 3)"])
        #expect(errors("plot zeros([1, 1, 1, 1, 1, 1]) to \"\(dir)/a.svg\"").first?.hasPrefix("'plot' cannot draw a tensor of shape [1, 1, 1, 1, 1, 1]") == true)
        // An image larger than a plot draws is refused before it is encoded.
        #expect(errors("plot zeros([4000, 3001]) to \"\(dir)/a.svg\"")
            == ["'plot' cannot draw a tensor of shape [4000, 3001]: an image of 4000 x 3001 x 1 values is larger than 'plot' draws (12000000 values)"])
        // A sinusoid batch is not images.
        #expect(errors("tasks s = sinusoid < >\nlet b = sample(s, 1)\nplot b to \"\(dir)/a.svg\"").first?.hasPrefix("'plot' cannot draw this record") == true)
    }

    @Test func pngFiles() throws {
        let dir = scratch()
        defer { try? FileManager.default.removeItem(atPath: dir) }
        try #require(Plot.rsvgConvert != nil, "rsvg-convert (librsvg2-bin) is needed for PNG plots")
        let diagnostics = Interpreter(output: BufferedOutput()).run(SourceFile(name: dir + "/m.mq", text: """
            plot [1, 4, 9] to "\(dir)/line.png"
            let g = generator(1)
            plot rand(g, [3, 8, 8]) to "\(dir)/grid.PNG"
            """))
        #expect(diagnostics.map(\.message) == [])
        for name in ["line.png", "grid.PNG"] {
            let bytes = [UInt8](try Data(contentsOf: URL(fileURLWithPath: "\(dir)/\(name)")))
            #expect(bytes.prefix(8) == [137, 80, 78, 71, 13, 10, 26, 10], "\(name) is a PNG")
            #expect(bytes.count > 1000)
        }
        // Only the PNGs: the temporary SVG and PNG are gone.
        #expect(try FileManager.default.contentsOfDirectory(atPath: dir).sorted() == ["grid.PNG", "line.png"])
        let missing = Interpreter(output: BufferedOutput()).run(SourceFile(name: dir + "/m.mq", text: "plot [1, 2] to \"\(dir)/none/a.png\"")).map(\.message)
        #expect(missing.first?.contains("the folder '\(dir)/none' does not exist") == true, "\(missing)")
    }

    final class Notebook: OutputSink {
        var svgs: [String] = []
        func write(_ line: String) {}
        var showsImages: Bool { true }
        func display(svg: String) { svgs.append(svg) }
    }

    @Test func inANotebookPlotDrawsInline() {
        let notebook = Notebook()
        #expect(Interpreter(output: notebook).run(SourceFile(name: "n.mq", text: "plot [1, 4, 9]")).map(\.message) == [])
        #expect(notebook.svgs.count == 1)
        #expect(parseSVG(notebook.svgs.first ?? "")?.all("circle").count == 3)
    }
}
