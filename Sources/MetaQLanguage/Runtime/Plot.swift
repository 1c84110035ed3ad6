import Foundation
import MetaQEngine

/// SVG building shared by every plot: escaped text, axes with "nice" ticks, line charts with
/// bands and markers, legends outside the data, bar charts and a heat map with a colour scale.
struct SVG {
    let width: Int, height: Int
    private var body: [String] = []

    init(width: Int, height: Int) {
        self.width = width
        self.height = height
        body.append("<rect width=\"100%\" height=\"100%\" fill=\"white\"/>")
    }

    /// Text and attribute values escaped for XML (`&`, `<`, `>`, quotes).
    static func escape(_ s: String) -> String {
        var out = ""
        out.reserveCapacity(s.count)
        for c in s {
            switch c {
            case "&": out += "&amp;"
            case "<": out += "&lt;"
            case ">": out += "&gt;"
            case "\"": out += "&quot;"
            case "'": out += "&apos;"
            default:
                // Characters XML 1.0 forbids (control characters other than tab and newlines).
                if let a = c.asciiValue, a < 32, a != 9, a != 10, a != 13 { out += " " } else { out.append(c) }
            }
        }
        return out
    }

    static func n(_ v: Double) -> String { v.isFinite ? String(format: "%.1f", v) : "0" }

    /// A tick label: at most four significant digits, no trailing zeros.
    static func label(_ v: Double) -> String {
        guard v.isFinite else { return v.isNaN ? "NaN" : (v > 0 ? "inf" : "-inf") }
        if v == 0 { return "0" }
        if abs(v) >= 1e5 || abs(v) < 1e-3 { return String(format: "%.2g", v) }
        var s = String(format: "%.4g", v)
        if s.contains("."), !s.contains("e") {
            while s.hasSuffix("0") { s.removeLast() }
            if s.hasSuffix(".") { s.removeLast() }
        }
        return s
    }

    mutating func text(_ s: String, x: Double, y: Double, anchor: String = "start", size: Int? = nil, fill: String? = nil,
                       bold: Bool = false, rotate: Bool = false) {
        var a = "x=\"\(SVG.n(x))\" y=\"\(SVG.n(y))\""
        if anchor != "start" { a += " text-anchor=\"\(anchor)\"" }
        if let size { a += " font-size=\"\(size)\"" }
        if let fill { a += " fill=\"\(SVG.escape(fill))\"" }
        if bold { a += " font-weight=\"bold\"" }
        if rotate { a += " transform=\"rotate(-90 \(SVG.n(x)) \(SVG.n(y)))\"" }
        body.append("<text \(a)>\(SVG.escape(s))</text>")
    }

    mutating func line(_ x1: Double, _ y1: Double, _ x2: Double, _ y2: Double, stroke: String, width: Double = 1, dash: String? = nil) {
        body.append("<line x1=\"\(SVG.n(x1))\" y1=\"\(SVG.n(y1))\" x2=\"\(SVG.n(x2))\" y2=\"\(SVG.n(y2))\" stroke=\"\(SVG.escape(stroke))\" stroke-width=\"\(width)\"\(dash.map { " stroke-dasharray=\"\($0)\"" } ?? "")/>")
    }

    mutating func rect(_ x: Double, _ y: Double, _ w: Double, _ h: Double, fill: String, stroke: String? = nil, opacity: Double? = nil, title: String? = nil) {
        var a = "x=\"\(SVG.n(x))\" y=\"\(SVG.n(y))\" width=\"\(SVG.n(max(w, 0)))\" height=\"\(SVG.n(max(h, 0)))\" fill=\"\(SVG.escape(fill))\""
        if let stroke { a += " stroke=\"\(SVG.escape(stroke))\"" }
        if let opacity { a += " fill-opacity=\"\(opacity)\"" }
        if let title { body.append("<rect \(a)><title>\(SVG.escape(title))</title></rect>") } else { body.append("<rect \(a)/>") }
    }

    mutating func polyline(_ points: [(Double, Double)], stroke: String, width: Double = 2, dash: String? = nil, opacity: Double? = nil, title: String? = nil) {
        guard points.count > 1 else { return }
        let p = points.map { "\(SVG.n($0.0)),\(SVG.n($0.1))" }.joined(separator: " ")
        var a = "fill=\"none\" stroke=\"\(SVG.escape(stroke))\" stroke-width=\"\(width)\" stroke-linejoin=\"round\" points=\"\(p)\""
        if let dash { a += " stroke-dasharray=\"\(dash)\"" }
        if let opacity { a += " stroke-opacity=\"\(opacity)\"" }
        if let title { body.append("<polyline \(a)><title>\(SVG.escape(title))</title></polyline>") } else { body.append("<polyline \(a)/>") }
    }

    mutating func polygon(_ points: [(Double, Double)], fill: String, opacity: Double) {
        guard points.count > 2 else { return }
        let p = points.map { "\(SVG.n($0.0)),\(SVG.n($0.1))" }.joined(separator: " ")
        body.append("<polygon fill=\"\(SVG.escape(fill))\" fill-opacity=\"\(opacity)\" stroke=\"none\" points=\"\(p)\"/>")
    }

    enum Marker { case dot, cross, triangle }

    mutating func marker(_ kind: Marker, x: Double, y: Double, color: String, size: Double = 3.5, title: String? = nil) {
        let t = title.map { "<title>\(SVG.escape($0))</title>" } ?? ""
        let c = SVG.escape(color)
        switch kind {
        case .dot:
            body.append("<circle cx=\"\(SVG.n(x))\" cy=\"\(SVG.n(y))\" r=\"\(size)\" fill=\"\(c)\">\(t)</circle>")
        case .cross:
            let d = size + 0.5
            body.append("<path d=\"M\(SVG.n(x - d)),\(SVG.n(y - d))L\(SVG.n(x + d)),\(SVG.n(y + d))M\(SVG.n(x - d)),\(SVG.n(y + d))L\(SVG.n(x + d)),\(SVG.n(y - d))\" stroke=\"\(c)\" stroke-width=\"2\" fill=\"none\">\(t)</path>")
        case .triangle:
            let d = size + 1
            body.append("<path d=\"M\(SVG.n(x)),\(SVG.n(y - d))L\(SVG.n(x + d)),\(SVG.n(y + d))L\(SVG.n(x - d)),\(SVG.n(y + d))Z\" fill=\"\(c)\">\(t)</path>")
        }
    }

    /// An embedded PNG (a data URI) drawn at x, y in a w x h box, upscaled without smoothing.
    mutating func image(png: [UInt8], x: Double, y: Double, width w: Double, height h: Double, title: String? = nil) {
        let t = title.map { "<title>\(SVG.escape($0))</title>" } ?? ""
        body.append("<image x=\"\(SVG.n(x))\" y=\"\(SVG.n(y))\" width=\"\(SVG.n(w))\" height=\"\(SVG.n(h))\" preserveAspectRatio=\"none\" style=\"image-rendering:pixelated\" href=\"data:image/png;base64,\(Data(png).base64EncodedString())\">\(t)</image>")
    }

    var document: String {
        (["<?xml version=\"1.0\" encoding=\"UTF-8\"?>",
          "<svg xmlns=\"http://www.w3.org/2000/svg\" width=\"\(width)\" height=\"\(height)\" viewBox=\"0 0 \(width) \(height)\" font-family=\"DejaVu Sans, Helvetica, Arial, sans-serif\" font-size=\"11\">"]
            + body + ["</svg>"]).joined(separator: "\n") + "\n"
    }

    /// Approximate width of `s` in pixels at `size` (for legends and margins).
    static func textWidth(_ s: String, size: Int = 11) -> Double { Double(s.count) * Double(size) * 0.6 }

    static let palette = ["#1f77b4", "#d62728", "#2ca02c", "#ff7f0e", "#9467bd", "#8c564b", "#e377c2", "#7f7f7f", "#bcbd22", "#17becf"]

    static func color(_ i: Int, of count: Int) -> String {
        count <= palette.count ? palette[i % palette.count] : "hsl(\(Int(360.0 * Double(i) / Double(max(count, 1)))),65%,42%)"
    }
}

/// A linear scale from data values to pixels.
struct Scale {
    var lo: Double, hi: Double, from: Double, to: Double

    func callAsFunction(_ v: Double) -> Double { hi > lo ? from + (to - from) * (v - lo) / (hi - lo) : (from + to) / 2 }

    /// Ticks at 1, 2, 2.5 or 5 times a power of ten, about `count` of them, inside [lo, hi].
    static func ticks(_ lo: Double, _ hi: Double, count: Int = 5, integers: Bool = false) -> [Double] {
        guard lo.isFinite, hi.isFinite else { return [] }
        guard hi > lo else { return [lo] }
        let raw = (hi - lo) / Double(max(count, 1))
        let magnitude = pow(10, floor(log10(raw)))
        var step = [1, 2, 2.5, 5, 10].map { $0 * magnitude }.first { $0 >= raw * 0.999 } ?? 10 * magnitude
        if integers { step = max(1, step.rounded(.up)) }
        var out: [Double] = []
        var k = (lo / step).rounded(.up)
        while k * step <= hi + step * 1e-9, out.count < 50 {
            // Rounded to 12 digits: 3 * 0.2 is 0.6, not 0.6000000000000001.
            let t = Double(String(format: "%.12g", k * step)) ?? k * step
            out.append(abs(t) < step * 1e-9 ? 0 : t)
            k += 1
        }
        return out
    }

    /// A range around the finite `values`, padded by 5% (a single value gets a unit-sized range).
    static func range(_ values: [Double], padded: Bool = true, includeZero: Bool = false) -> (Double, Double) {
        let finite = values.filter(\.isFinite)
        guard var lo = finite.min(), var hi = finite.max() else { return (0, 1) }
        if includeZero { lo = min(lo, 0); hi = max(hi, 0) }
        if hi == lo {
            let d = lo == 0 ? 1 : abs(lo) * 0.5
            return (lo - d, hi + d)
        }
        guard padded else { return (lo, hi) }
        let pad = (hi - lo) * 0.05
        return (includeZero && lo == 0 ? 0 : lo - pad, hi + pad)
    }

    /// A colour range that ignores outliers: Tukey's fences (quartiles +- 3 IQR), within the
    /// data's own range. Values outside it are drawn in the end colours.
    static func robustRange(_ values: [Double]) -> (lo: Double, hi: Double) {
        let v = values.filter(\.isFinite).sorted()
        guard let first = v.first, let last = v.last else { return (0, 1) }
        func quantile(_ q: Double) -> Double {
            let p = q * Double(v.count - 1), i = Int(p), f = p - Double(i)
            return i + 1 < v.count ? v[i] * (1 - f) + v[i + 1] * f : v[i]
        }
        let q1 = quantile(0.25), q3 = quantile(0.75), iqr = q3 - q1
        var lo = max(first, q1 - 3 * iqr), hi = min(last, q3 + 3 * iqr)
        if hi <= lo {
            // Most values equal: span the values that are not outliers, or all of them.
            let inner = v.filter { $0 >= q1 && $0 <= q3 }
            lo = inner.first ?? first
            hi = inner.last ?? last
            if hi <= lo { (lo, hi) = (first, last) }
        }
        return (lo, hi)
    }
}

/// One line (or set of points) of a chart.
struct Series {
    var name: String
    var points: [(x: Double, y: Double)]
    /// Lower and upper edges of a shaded band at each point (a confidence interval).
    var band: [(x: Double, lo: Double, hi: Double)] = []
    var color: String
    var width: Double = 2
    var dash: String? = nil
    var opacity: Double? = nil
    /// Draw markers at the points (always done when there is one point); nil: when there are
    /// at most 40 points.
    var markers: Bool? = nil
    /// Only markers, no line.
    var scatter = false
    var marker: SVG.Marker = .dot
    var inLegend = true
}

/// A chart with axes, ticks, axis labels, a legend to the right of the data and notes below.
struct Chart {
    var title: String
    var xLabel: String
    var yLabel: String
    var series: [Series] = []
    var notes: [String] = []
    var integerX = false
    var yRange: (Double, Double)? = nil
    /// Horizontal reference lines: value, label, colour.
    var references: [(y: Double, label: String)] = []
    /// Replaces the label of the y tick at this value.
    var yTickNames: [Double: String] = [:]
    var plotWidth = 520, plotHeight = 280

    func render() -> String {
        let legend = series.filter(\.inLegend)
        let legendWidth = legend.isEmpty ? 0 : Int(legend.map { SVG.textWidth($0.name) }.max()! + 44)
        let left = 72, top = 44, right = 24 + legendWidth
        let notesHeight = notes.count * 15
        let width = left + plotWidth + right
        let legendHeight = legend.count * 16 + top + 10
        let height = max(top + plotHeight + 52 + notesHeight, legendHeight)
        var svg = SVG(width: max(width, Int(SVG.textWidth(title, size: 14)) + left), height: height)
        svg.text(title, x: Double(left), y: 22, size: 14, bold: true)

        let xs = series.flatMap { $0.points.map(\.x) }
        let ys = series.flatMap { $0.points.map(\.y) + $0.band.flatMap { [$0.lo, $0.hi] } } + references.map(\.y)
        var (xlo, xhi) = Scale.range(xs, padded: false)
        if xs.filter(\.isFinite).count > 0, xhi - xlo > 0 {
            let pad = (xhi - xlo) * 0.03
            xlo -= pad; xhi += pad
        } else if let x = xs.first(where: \.isFinite) {
            (xlo, xhi) = integerX ? (x - 1, x + 1) : (x - 0.5, x + 0.5)
        }
        let (ylo, yhi) = yRange ?? Scale.range(ys)
        let sx = Scale(lo: xlo, hi: xhi, from: Double(left), to: Double(left + plotWidth))
        let sy = Scale(lo: ylo, hi: yhi, from: Double(top + plotHeight), to: Double(top))
        let bottom = Double(top + plotHeight)

        // Grid, ticks and labels.
        // Ticks too close to a named one are left out (their labels would overlap).
        let yTicks = Scale.ticks(ylo, yhi).filter { t in yTickNames[t] != nil || !yTickNames.keys.contains { abs(sy($0) - sy(t)) < 14 } }
        for t in yTicks {
            svg.line(Double(left), sy(t), Double(left + plotWidth), sy(t), stroke: "#e6e6e6")
            svg.line(Double(left) - 4, sy(t), Double(left), sy(t), stroke: "#444")
            svg.text(yTickNames[t] ?? SVG.label(t), x: Double(left) - 7, y: sy(t) + 4, anchor: "end")
        }
        for (y, name) in yTickNames where !yTicks.contains(y) {
            svg.line(Double(left) - 4, sy(y), Double(left), sy(y), stroke: "#444")
            svg.text(name, x: Double(left) - 7, y: sy(y) + 4, anchor: "end")
        }
        for t in Scale.ticks(xlo, xhi, count: 6, integers: integerX) {
            svg.line(sx(t), bottom, sx(t), bottom + 4, stroke: "#444")
            svg.text(SVG.label(t), x: sx(t), y: bottom + 16, anchor: "middle")
        }
        svg.rect(Double(left), Double(top), Double(plotWidth), Double(plotHeight), fill: "none", stroke: "#888")
        svg.text(xLabel, x: Double(left + plotWidth / 2), y: bottom + 34, anchor: "middle")
        svg.text(yLabel, x: 16, y: Double(top + plotHeight / 2), anchor: "middle", rotate: true)

        for r in references {
            svg.line(Double(left), sy(r.y), Double(left + plotWidth), sy(r.y), stroke: "#555", dash: "5,4")
            svg.text(r.label, x: Double(left + plotWidth) - 4, y: sy(r.y) - 4, anchor: "end", size: 10, fill: "#555")
        }
        for s in series where !s.band.isEmpty {
            let upper = s.band.map { (sx($0.x), sy($0.hi)) }, lower = s.band.reversed().map { (sx($0.x), sy($0.lo)) }
            if s.band.count == 1 {
                svg.line(upper[0].0, upper[0].1, lower[0].0, lower[0].1, stroke: s.color, width: 6)
            } else {
                svg.polygon(upper + lower, fill: s.color, opacity: 0.18)
            }
        }
        for s in series {
            let points = s.points.filter { $0.x.isFinite && $0.y.isFinite }.map { (sx($0.x), sy($0.y)) }
            if !s.scatter { svg.polyline(points, stroke: s.color, width: s.width, dash: s.dash, opacity: s.opacity, title: s.name) }
            if s.scatter || points.count == 1 || (s.markers ?? (points.count <= 40)) {
                for (p, d) in zip(points, s.points.filter { $0.x.isFinite && $0.y.isFinite }) {
                    svg.marker(s.marker, x: p.0, y: p.1, color: s.color, size: s.scatter ? 4 : 3,
                               title: "\(s.name): \(SVG.label(d.x)), \(SVG.label(d.y))")
                }
            }
        }
        // The legend, to the right of the plot area.
        let lx = Double(left + plotWidth + 16)
        for (i, s) in legend.enumerated() {
            let y = Double(top + 8 + i * 16)
            if s.scatter {
                svg.marker(s.marker, x: lx + 11, y: y, color: s.color)
            } else {
                svg.polyline([(lx, y), (lx + 22, y)], stroke: s.color, width: max(s.width, 1.5), dash: s.dash, opacity: s.opacity)
            }
            svg.text(s.name, x: lx + 28, y: y + 4)
        }
        for (i, note) in notes.enumerated() {
            svg.text(note, x: Double(left), y: bottom + 52 + Double(i * 15), size: 10, fill: "#444")
        }
        return svg.document
    }
}

/// The `plot` command's drawings.
enum Plot {
    /// The SVG for `value`, or nil when `plot` does not draw it (`why` says what it draws).
    static func svg(for value: Value) throws -> String {
        switch value {
        case let .lifelongReport(r): return lifelong(r)
        case let .onlineReport(r): return online(r)
        case let .report(r): return evaluations([("", r)])
        case let .list(items):
            if items.isEmpty { throw PlotError("an empty list") }
            if let reports = reportsOf(Array(items).enumerated().map { ("learner \($0.offset)", $0.element) }) { return evaluations(reports) }
            if let logs = logsOf(Array(items).enumerated().map { ("run \($0.offset)", $0.element) }) { return training(logs) }
            if let numbers = numbers(Array(items)) { return Plot.numbers([("", numbers)], title: "values") }
            if let r = try recordsChart(Array(items)) { return r }
            throw PlotError("a list of \(items[0].typeName)s (it draws lists of numbers, records, eval reports or training logs)")
        case let .record(record):
            if let grid = try ImageGrid.record(record) { return grid }
            if let paths = trajectories(record) { return paths }
            if let log = logsOf([("", value)]) { return training(log) }
            let fields = record.fields
            if fields.isEmpty { throw PlotError("an empty record") }
            if let reports = reportsOf(fields.map { ($0.key, $0.value) }) { return evaluations(reports) }
            if let logs = logsOf(fields.map { ($0.key, $0.value) }) { return training(logs) }
            let values = fields.map { numbers([$0.value]) }
            if values.allSatisfy({ $0 != nil }) { return bars(fields.map { ($0.key, $0.value.number ?? .nan) }) }
            let lists = fields.map { (key: $0.key, value: $0.value) }.compactMap { f -> (String, [Double])? in
                if case let .list(l) = f.value, let n = numbers(Array(l)) { return (f.key, n) }
                return nil
            }
            if lists.count == fields.count { return Plot.numbers(lists, title: fields.map(\.key).joined(separator: ", ")) }
            throw PlotError("this record (it draws a training log, a task or a split of images (as 'sample' makes), a record of eval reports, of numbers or of lists of numbers, or episodes from 'rollout' with 2D observations)")
        case let .tensor(t) where t.shape.count <= 1:
            return Plot.numbers([("", t.scalars.map(Double.init))], title: "tensor values")
        case let .tensor(t):
            return try ImageGrid.tensor(t)
        default:
            throw PlotError("a \(value.typeName)")
        }
    }

    struct PlotError: Error { let what: String; init(_ what: String) { self.what = what } }

    static func numbers(_ items: [Value]) -> [Double]? {
        var out: [Double] = []
        for v in items {
            switch v {
            case let .int(i): out.append(Double(i))
            case let .float(f): out.append(f)
            default: return nil
            }
        }
        return out
    }

    static func reportsOf(_ items: [(String, Value)]) -> [(String, EvaluationReport)]? {
        var out: [(String, EvaluationReport)] = []
        for (name, v) in items { guard case let .report(r) = v else { return nil }; out.append((name, r)) }
        return out
    }

    /// A training log: the record `train` returns (its `losses`, one mean per log window).
    struct TrainingLog { var losses: [Double]; var window: Int?; var iterations: Int? }

    static func logsOf(_ items: [(String, Value)]) -> [(String, TrainingLog)]? {
        var out: [(String, TrainingLog)] = []
        for (name, v) in items {
            guard case let .record(r) = v, case let .list(l)? = r["losses"], let losses = numbers(Array(l)) else { return nil }
            var window: Int?
            var iterations: Int?
            if case let .int(w)? = r["log_every"], w > 0 { window = w }
            if case let .int(i)? = r["iterations"] { iterations = i }
            out.append((name, TrainingLog(losses: losses, window: window, iterations: iterations)))
        }
        return out
    }

    /// Raw loss per log window (thin) and an exponentially smoothed curve (thick), per run.
    static func training(_ logs: [(String, TrainingLog)]) -> String {
        var chart = Chart(title: "Training loss", xLabel: logs.allSatisfy({ $0.1.window != nil }) ? "iteration" : "log window",
                          yLabel: "loss (mean per log window)")
        for (i, (name, log)) in logs.enumerated() {
            let color = SVG.color(i, of: logs.count)
            let xs = log.losses.indices.map { k in Double(log.window.map { min($0 * (k + 1), log.iterations ?? Int.max) } ?? (k + 1)) }
            let prefix = name.isEmpty ? "" : name + ": "
            chart.series.append(Series(name: prefix + "loss", points: Array(zip(xs, log.losses)).map { (x: $0.0, y: $0.1) },
                                       color: color, width: 1, opacity: 0.45, markers: log.losses.count <= 40))
            // Exponential moving average with bias correction (as TensorBoard smooths).
            let alpha = log.losses.count > 8 ? 0.6 : 0.0
            var ema = 0.0, weight = 0.0
            var smooth: [(x: Double, y: Double)] = []
            for (x, v) in zip(xs, log.losses) where v.isFinite {
                ema = alpha * ema + (1 - alpha) * v
                weight = alpha * weight + (1 - alpha)
                smooth.append((x, ema / weight))
            }
            if alpha > 0 { chart.series.append(Series(name: prefix + "smoothed", points: smooth, color: color, width: 2.5, markers: false)) }
        }
        chart.integerX = true
        let n = logs.map(\.1.losses.count).max() ?? 0
        chart.notes.append("\(n) log window\(n == 1 ? "" : "s")\(logs.count > 1 ? " (longest run)" : "")" + (n > 8 ? "; smoothed: exponential moving average, weight 0.6" : ""))
        return chart.render()
    }

    /// Score against adaptation steps, one line per learner, with 95% confidence bands.
    static func evaluations(_ reports: [(String, EvaluationReport)]) -> String {
        let metrics = Set(reports.map(\.1.metric))
        let metric = metrics.count == 1 ? metrics.first! : "score"
        var chart = Chart(title: "\(metric) after adaptation (mean, shaded: 95% CI)", xLabel: "adaptation steps", yLabel: metric)
        chart.integerX = true
        for (i, (name, r)) in reports.enumerated() {
            let color = SVG.color(i, of: reports.count)
            let label = name.isEmpty ? metric : (metrics.count == 1 ? name : "\(name) (\(r.metric))")
            chart.series.append(Series(name: label, points: r.rows.map { (Double($0.steps), $0.mean) },
                                       band: r.rows.map { (Double($0.steps), $0.mean - $0.confidence95, $0.mean + $0.confidence95) },
                                       color: color, markers: true))
        }
        let tasks = Set(reports.flatMap { $0.1.rows.map(\.tasks) })
        if let t = tasks.first, tasks.count == 1 { chart.notes.append("\(t) test task\(t == 1 ? "" : "s") per point") }
        return chart.render()
    }

    /// Lines of numbers against their index.
    static func numbers(_ lists: [(String, [Double])], title: String) -> String {
        var chart = Chart(title: title, xLabel: "index", yLabel: lists.count == 1 && !lists[0].0.isEmpty ? lists[0].0 : "value")
        chart.integerX = true
        for (i, (name, values)) in lists.enumerated() {
            chart.series.append(Series(name: name.isEmpty ? "value" : name, points: values.enumerated().map { (Double($0.offset), $0.element) },
                                       color: SVG.color(i, of: lists.count), inLegend: lists.count > 1))
        }
        let bad = lists.reduce(0) { $0 + $1.1.filter { !$0.isFinite }.count }
        if bad > 0 { chart.notes.append("\(bad) value\(bad == 1 ? " is" : "s are") not finite and not drawn") }
        return chart.render()
    }

    /// A list of records: the first field numeric in every record is x, the other numeric
    /// fields are lines against it (with a single numeric field, it is drawn against the index).
    /// When x is not in increasing order the records are points, not lines: a scatter plot.
    /// Episodes from `rollout` in a 2D environment (observations [T, E*H, 2], task
    /// parameters [T, P >= 2] whose first two are the goal, as in navigation2d and
    /// turned_navigation): the first episode of each of the first few tasks as a path, in the
    /// colour of its goal, drawn as a cross. Nil for any other record.
    static func trajectories(_ r: Record) -> String? {
        guard case let .tensor(obs)? = r["observations"], case let .tensor(mask)? = r["mask"], case let .tensor(goals)? = r["task_params"],
              case let .int(tasks)? = r["tasks"], case let .int(horizon)? = r["horizon"], case let .int(episodes)? = r["episodes"],
              tasks >= 1, horizon >= 1, episodes >= 1, obs.rank == 3, obs.shape == [tasks, episodes * horizon, 2],
              mask.shape == [tasks, episodes * horizon], goals.rank == 2, goals.shape[0] == tasks, goals.shape[1] >= 2 else { return nil }
        let shown = min(tasks, 6)
        let p = goals.shape[1]
        let (o, m, g) = (obs.scalars, mask.scalars, goals.scalars)
        var chart = Chart(title: "trajectories and goals", xLabel: "x", yLabel: "y")
        for t in 0..<shown {
            let color = SVG.color(t, of: shown)
            var points: [(x: Double, y: Double)] = []
            for step in 0..<horizon {
                let i = t * episodes * horizon + step
                guard m[i] != 0 else { break }
                points.append((Double(o[i * 2]), Double(o[i * 2 + 1])))
            }
            chart.series.append(Series(name: "task \(t)", points: points, color: color, width: 1.5, markers: false))
            chart.series.append(Series(name: "goal \(t)", points: [(Double(g[t * p]), Double(g[t * p + 1]))], color: color,
                                       scatter: true, marker: .cross, inLegend: false))
        }
        chart.notes.append("the first episode of \(shown == tasks ? "each of the \(tasks)" : "\(shown) of the \(tasks)") task\(tasks == 1 ? "" : "s"); crosses: the goals\(p > 2 ? " (the first two of each task's \(p) parameters)" : "")")
        return chart.render()
    }

    static func recordsChart(_ items: [Value]) throws -> String? {
        var records: [Record] = []
        for v in items { guard case let .record(r) = v else { return nil }; records.append(r) }
        let keys = records[0].keys.filter { k in records.allSatisfy { $0[k]?.number != nil } }
        guard !keys.isEmpty else { throw PlotError("a list of records without a numeric field common to all") }
        if keys.count == 1 {
            return numbers([(keys[0], records.map { $0[keys[0]]!.number! })], title: keys[0])
        }
        let xKey = keys[0]
        let xs = records.map { $0[xKey]!.number! }
        let scatter = zip(xs, xs.dropFirst()).contains { $0.0 > $0.1 }
        var chart = Chart(title: keys.dropFirst().joined(separator: ", ") + " against " + xKey, xLabel: xKey,
                          yLabel: keys.count == 2 ? keys[1] : "value")
        let markers: [SVG.Marker] = [.dot, .triangle, .cross]
        for (i, k) in keys.dropFirst().enumerated() {
            chart.series.append(Series(name: k, points: records.map { ($0[xKey]!.number!, $0[k]!.number!) },
                                       color: SVG.color(i, of: keys.count - 1), scatter: scatter, marker: scatter ? markers[i % markers.count] : .dot,
                                       inLegend: keys.count > 2))
        }
        if scatter { chart.notes.append("\(records.count) points (\(xKey) is not in increasing order, so they are not joined)") }
        return chart.render()
    }

    /// A bar per named number.
    static func bars(_ values: [(String, Double)]) -> String {
        let barWidth = max(18, min(60, 520 / max(values.count, 1)))
        let plotWidth = max(values.count * (barWidth + 12), 200), plotHeight = 260
        let labelHeight = Int(min(values.map { SVG.textWidth($0.0) }.max() ?? 0, 140))
        let left = 72, top = 44
        var svg = SVG(width: left + plotWidth + 30, height: top + plotHeight + labelHeight + 40)
        svg.text("values", x: Double(left), y: 22, size: 14, bold: true)
        let (lo, hi) = Scale.range(values.map(\.1), includeZero: true)
        let sy = Scale(lo: lo, hi: hi, from: Double(top + plotHeight), to: Double(top))
        for t in Scale.ticks(lo, hi) {
            svg.line(Double(left), sy(t), Double(left + plotWidth), sy(t), stroke: "#e6e6e6")
            svg.text(SVG.label(t), x: Double(left) - 7, y: sy(t) + 4, anchor: "end")
        }
        for (i, (name, v)) in values.enumerated() {
            let x = Double(left + 6 + i * (barWidth + 12))
            if v.isFinite {
                svg.rect(x, min(sy(v), sy(0)), Double(barWidth), abs(sy(v) - sy(0)), fill: SVG.palette[0], title: "\(name) = \(SVG.label(v))")
                svg.text(SVG.label(v), x: x + Double(barWidth) / 2, y: v >= 0 ? sy(v) - 3 : sy(v) + 11, anchor: "middle", size: 10)
            } else {
                svg.text("n/a", x: x + Double(barWidth) / 2, y: sy(0) - 3, anchor: "middle", size: 10, fill: "#d62728")
            }
            let ly = Double(top + plotHeight + 12)
            svg.rotatedLabel(name, x: x + Double(barWidth) / 2 + 4, y: ly)
        }
        svg.line(Double(left), sy(0), Double(left + plotWidth), sy(0), stroke: "#444")
        svg.rect(Double(left), Double(top), Double(plotWidth), Double(plotHeight), fill: "none", stroke: "#888")
        return svg.document
    }

    /// A heat map of R with a colour scale (left) and one line per task across the stream (right).
    static func lifelong(_ r: ContinualReport) -> String {
        let n = r.matrix.count, m = r.matrix.first?.count ?? 0
        let cell = Double(max(12, min(28, 420 / max(max(m, n), 1))))
        let values = r.matrix.flatMap { $0 }
        let (lo, hi) = Scale.robustRange(values)
        let clipped = values.filter { $0.isFinite && ($0 < lo || $0 > hi) }.count
        // Viridis-like ramp; the better end is bright.
        let stops: [(Double, Double, Double)] = [(68, 1, 84), (59, 82, 139), (33, 145, 140), (94, 201, 98), (253, 231, 37)]
        func color(_ v: Double) -> String {
            guard v.isFinite else { return "#cccccc" }
            var t = hi > lo ? min(max((v - lo) / (hi - lo), 0), 1) : 0.5
            if !r.higherIsBetter { t = 1 - t }
            let p = t * Double(stops.count - 1), i = min(Int(p), stops.count - 2), f = p - Double(i)
            let a = stops[i], b = stops[i + 1]
            return String(format: "#%02x%02x%02x", Int(a.0 + (b.0 - a.0) * f), Int(a.1 + (b.1 - a.1) * f), Int(a.2 + (b.2 - a.2) * f))
        }
        let left = 60.0, top = 64.0
        let mapWidth = Double(m) * cell, mapHeight = Double(n) * cell
        let barX = left + mapWidth + 14, barHeight = max(mapHeight, 160)
        let chartLeft = barX + 110, chartWidth = 400.0
        let legendWidth = m <= 20 ? 80.0 : 0
        let chartHeight = max(max(mapHeight, 240), Double(min(m, 20)) * 15 + 10)
        let notes = clipped > 0 ? 1 : 0
        var svg = SVG(width: Int(chartLeft + chartWidth + legendWidth + 30), height: Int(top + max(chartHeight, barHeight) + 60 + Double(notes * 15)))
        svg.text("\(r.method): \(r.metric) on task j (column) after learning task i (row)", x: left, y: 22, size: 14, bold: true)
        svg.text(String(format: "ACC %.4f   BWT %.4f   FWT %.4f", r.averageScore, r.backwardTransfer, r.forwardTransfer), x: left, y: 40)
        func name(_ j: Int) -> String { j < r.taskNames.count ? r.taskNames[j] : "task \(j)" }
        for (i, row) in r.matrix.enumerated() {
            for (j, v) in row.enumerated() {
                svg.rect(left + Double(j) * cell, top + Double(i) * cell, cell, cell, fill: color(v),
                         title: "R[\(i)][\(j)] = \(String(format: "%.4f", v)) (\(name(j)) after learning \(name(i)))")
            }
        }
        let every = max(1, Int((14 / cell).rounded(.up)))  // a label every 14 pixels at least
        for i in stride(from: 0, to: n, by: every) { svg.text("\(i)", x: left - 5, y: top + (Double(i) + 0.5) * cell + 4, anchor: "end", size: 10) }
        for j in stride(from: 0, to: m, by: every) { svg.text("\(j)", x: left + (Double(j) + 0.5) * cell, y: top + mapHeight + 13, anchor: "middle", size: 10) }
        svg.text("task j (scored)", x: left + mapWidth / 2, y: top + mapHeight + 28, anchor: "middle")
        svg.text("task i (learned)", x: left - 30, y: top + mapHeight / 2, anchor: "middle", rotate: true)
        // The colour scale.
        let steps = 40
        for k in 0..<steps {
            let v = hi - (hi - lo) * (Double(k) + 0.5) / Double(steps)
            svg.rect(barX, top + barHeight * Double(k) / Double(steps), 14, barHeight / Double(steps) + 0.5, fill: color(v))
        }
        svg.rect(barX, top, 14, barHeight, fill: "none", stroke: "#888")
        let sbar = Scale(lo: lo, hi: hi, from: top + barHeight, to: top)
        for t in Scale.ticks(lo, hi, count: 4) {
            svg.line(barX + 14, sbar(t), barX + 18, sbar(t), stroke: "#444")
            svg.text(SVG.label(t), x: barX + 20, y: sbar(t) + 4, size: 10)
        }
        if hi > lo {
            svg.text((values.contains { $0 > hi } ? "≥ " : "") + SVG.label(hi), x: barX - 2, y: top - 6, size: 10)
            svg.text((values.contains { $0 < lo } ? "≤ " : "") + SVG.label(lo), x: barX - 2, y: top + barHeight + 13, size: 10)
        }
        svg.text(r.higherIsBetter ? "better ↑" : "better ↓", x: barX - 2, y: top + barHeight + 27, size: 10, fill: "#444")
        // Task lines: task j's score after each learned task i >= j.
        let finite = values.filter(\.isFinite)
        let (ylo, yhi) = Scale.range(finite)
        let sx = Scale(lo: -0.3, hi: Double(max(n - 1, 1)) + 0.3, from: chartLeft, to: chartLeft + chartWidth)
        let sy = Scale(lo: ylo, hi: yhi, from: top + chartHeight, to: top)
        for t in Scale.ticks(ylo, yhi) {
            svg.line(chartLeft, sy(t), chartLeft + chartWidth, sy(t), stroke: "#e6e6e6")
            svg.text(SVG.label(t), x: chartLeft - 6, y: sy(t) + 4, anchor: "end", size: 10)
        }
        for t in Scale.ticks(0, Double(max(n - 1, 1)), count: min(max(n - 1, 1), 10), integers: true) where Int(t) < n {
            svg.line(sx(t), top + chartHeight, sx(t), top + chartHeight + 4, stroke: "#444")
            svg.text(SVG.label(t), x: sx(t), y: top + chartHeight + 16, anchor: "middle", size: 10)
        }
        svg.rect(chartLeft, top, chartWidth, chartHeight, fill: "none", stroke: "#888")
        svg.text("after learning task i", x: chartLeft + chartWidth / 2, y: top + chartHeight + 32, anchor: "middle")
        svg.text(r.metric, x: chartLeft - 40, y: top + chartHeight / 2, anchor: "middle", rotate: true)
        for j in 0..<m {
            let c = SVG.color(j, of: m)
            let points = (j..<n).compactMap { i -> (Double, Double, Int)? in
                let v = r.matrix[i][j]
                return v.isFinite ? (sx(Double(i)), sy(v), i) : nil
            }
            svg.polyline(points.map { ($0.0, $0.1) }, stroke: c, width: 1.5, title: "task \(j): \(name(j))")
            if points.count <= 30 || points.count == 1 {
                for p in points { svg.marker(.dot, x: p.0, y: p.1, color: c, size: 2.5, title: "task \(j) after learning \(p.2): \(String(format: "%.4f", r.matrix[p.2][j]))") }
            }
        }
        if m <= 20 {
            let lx = chartLeft + chartWidth + 12
            for j in 0..<m {
                let y = top + 8 + Double(j) * 15
                svg.line(lx, y, lx + 16, y, stroke: SVG.color(j, of: m), width: 2)
                svg.text("task \(j)", x: lx + 20, y: y + 4, size: 10)
            }
        } else {
            svg.text("line colour: task index, hue 0 to \(m - 1)", x: chartLeft, y: top - 8, size: 10, fill: "#444")
        }
        if clipped > 0 {
            svg.text("\(clipped) outlying value\(clipped == 1 ? " is" : "s are") drawn in the end colour of the scale (range: quartiles ± 3 IQR); hover a cell for its value",
                     x: left, y: top + max(chartHeight, barHeight) + 48, size: 10, fill: "#444")
        }
        return svg.document
    }

    /// Steps to proficiency per task, from the meta-learned start and from scratch; runs that
    /// never reached the target are marked on a line above the largest step count tried.
    static func online(_ r: OnlineReport) -> String {
        let never = Double(r.maximumSteps + 1)
        let relation = r.higherIsBetter ? ">=" : "<="
        var chart = Chart(title: "SGD steps to reach \(r.metric) \(relation) \(Value.format(r.proficiency)), per arriving task",
                          xLabel: "task (arrival order)", yLabel: "SGD steps to proficiency")
        chart.integerX = true
        chart.yRange = (0, never * 1.12)
        chart.references = [(never, "never reached within \(r.maximumSteps) steps")]
        chart.yTickNames = [never: "never"]
        // From scratch is dashed, so where the two lines coincide both show; their crosses
        // are set a little apart.
        func add(_ name: String, _ ks: [Int], _ color: String, dash: String?, shift: Double) {
            chart.series.append(Series(name: name, points: ks.enumerated().map { (Double($0.offset), Double(min($0.element, r.maximumSteps + 1))) },
                                       color: color, dash: dash))
            let missed = ks.enumerated().filter { $0.element > r.maximumSteps }
            if !missed.isEmpty {
                chart.series.append(Series(name: "\(name): not reached", points: missed.map { (Double($0.offset) + shift, never) },
                                           color: color, scatter: true, marker: .cross))
            }
        }
        add("from the meta-learned start", r.stepsToProficiency, "#1f77b4", dash: nil, shift: -0.08)
        add("from scratch", r.scratchStepsToProficiency, "#d62728", dash: "6,3", shift: 0.08)
        let a = r.stepsToProficiency.filter { $0 > r.maximumSteps }.count, b = r.scratchStepsToProficiency.filter { $0 > r.maximumSteps }.count
        chart.notes.append("never reached the target within \(r.maximumSteps) steps (× on the dashed line): \(a) of \(r.stepsToProficiency.count) tasks from the meta-learned start, \(b) from scratch")
        return chart.render()
    }
}

extension SVG {
    /// A label written downwards at 45 degrees under a bar.
    mutating func rotatedLabel(_ s: String, x: Double, y: Double) {
        body.append("<text x=\"\(SVG.n(x))\" y=\"\(SVG.n(y))\" text-anchor=\"end\" font-size=\"10\" transform=\"rotate(-45 \(SVG.n(x)) \(SVG.n(y)))\">\(SVG.escape(s))</text>")
    }
}

extension Plot {
    /// The `rsvg-convert` program on PATH (Debian's librsvg2-bin), which turns plots into PNG.
    static var rsvgConvert: String? {
        let path = ProcessInfo.processInfo.environment["PATH"] ?? "/usr/local/bin:/usr/bin:/bin"
        return path.split(separator: ":").map { "\($0)/rsvg-convert" }.first { FileManager.default.isExecutableFile(atPath: $0) }
    }

    /// Writes `svg` rendered as a PNG file at `path`, atomically: rsvg-convert renders it into a
    /// temporary file beside `path`, which then replaces `path`.
    static func writePNG(_ svg: String, to path: String, timeout: TimeInterval = 120) throws(TextFileError) {
        try TextFile.requireFolder(of: path)
        guard let tool = rsvgConvert else {
            throw TextFileError("a PNG is rendered by rsvg-convert (Debian's librsvg2-bin), which is not installed; install it or write an .svg file")
        }
        let folder = (path as NSString).deletingLastPathComponent
        let base = (folder.isEmpty ? "" : folder + "/") + ".\((path as NSString).lastPathComponent).\(UUID().uuidString)"
        let svgFile = base + ".svg", pngFile = base + ".png"
        defer {
            try? FileManager.default.removeItem(atPath: svgFile)
            try? FileManager.default.removeItem(atPath: pngFile)
        }
        try TextFile.write(svg, to: svgFile)
        let process = Process()
        process.executableURL = URL(fileURLWithPath: tool)
        process.arguments = ["-f", "png", "-o", pngFile, svgFile]
        process.standardInput = FileHandle.nullDevice
        process.standardOutput = FileHandle.nullDevice
        process.standardError = FileHandle.nullDevice
        do { try process.run() } catch { throw TextFileError("cannot run \(tool): \(error.localizedDescription)") }
        let deadline = Date().addingTimeInterval(timeout)
        while process.isRunning, Date() < deadline { usleep(10_000) }
        if process.isRunning {
            process.terminate()
            process.waitUntilExit()
            throw TextFileError("rsvg-convert did not finish within \(Int(timeout)) s")
        }
        guard process.terminationReason == .exit, process.terminationStatus == 0,
              let size = (try? FileManager.default.attributesOfItem(atPath: pngFile))?[.size] as? Int, size > 0 else {
            throw TextFileError("rsvg-convert could not render the plot (exit status \(process.terminationStatus))")
        }
        guard rename(pngFile, path) == 0 else { throw TextFileError(String(cString: strerror(errno))) }
    }
}
