import Foundation
import MetaQEngine

/// `plot` of images: a tensor of images as a grid, and a task's (or a meta-batch's) support
/// and query images with their labels. Each image is an embedded PNG (libpng, through
/// `ColorImage.pngData`), upscaled by whole pixels so small images stay sharp.
///
/// Layouts (the engine's images are channels-last): a tensor [H, W] or [H, W, C] is one image
/// (a rank-3 tensor whose last axis is 1 or 3 is read as [H, W, C]), [N, H, W] and
/// [N, H, W, C] are N images, [T, N, H, W, C] is a row of N images per task. A split
/// < x y tasks > (as `sample` makes: x [tasks, examples, H, W, C], y [tasks, examples]) is drawn
/// with its labels, and a meta-batch < support query tasks > as its first task's support and
/// query sets, titled and set apart.
enum ImageGrid {
    /// Images drawn at most, and pixel values (after upscaling) encoded at most, per plot.
    static let maximumImages = 400
    static let maximumPixelValues = 12_000_000

    struct Images {
        var height: Int, width: Int, channels: Int
        /// Each image's values, `height * width * channels` of them, channels last.
        var values: [ArraySlice<Float>]
        var labels: [String]
        /// Images there are (`values` may hold fewer).
        var total: Int
    }

    struct Section {
        var title: String
        var images: Images
        /// Draw one column per class (labels in equal runs, as sampled tasks order them).
        var byClass: Bool
        var tint: String
    }

    // MARK: Reading values

    /// The images of a tensor with `leading` axes before [H, W] or [H, W, C], from image
    /// `first` on, `limit` of them at most (and at most `maximumImages` are copied); nil when
    /// its trailing axes are not an image.
    static func images(_ t: Tensor, leading: Int, first: Int = 0, limit: Int? = nil) throws -> Images? {
        let shape = t.shape
        let rest = Array(shape.dropFirst(leading))
        let (h, w, c): (Int, Int, Int)
        switch rest.count {
        case 2: (h, w, c) = (rest[0], rest[1], 1)
        case 3 where rest[2] == 1 || rest[2] == 3: (h, w, c) = (rest[0], rest[1], rest[2])
        default: return nil
        }
        guard h >= 1, w >= 1 else { return nil }
        let per = h * w * c
        guard per <= maximumPixelValues else {
            throw Plot.PlotError("a tensor of shape \(shape): an image of \(h) x \(w) x \(c) values is larger than 'plot' draws (\(maximumPixelValues) values)")
        }
        let count = shape.prefix(leading).reduce(1, *)
        let from = min(first, count), n = min(limit ?? count, count - from), take = min(n, maximumImages)
        let values = t.withUnsafeBufferPointer { b in
            (0..<take).map { i in ArraySlice(b[((from + i) * per)..<((from + i + 1) * per)]) }
        }
        return Images(height: h, width: w, channels: c, values: values, labels: (0..<take).map(String.init), total: n)
    }

    /// A split < x y ... > whose inputs are images [tasks, examples, H, W(, C)]: task `task`'s
    /// images labelled by y.
    static func split(_ r: Record, task: Int = 0) throws -> (images: Images, tasks: Int)? {
        guard case let .tensor(x)? = r["x"], x.shape.count >= 4, x.shape[0] >= 1, x.shape[1] >= 1,
              case let .tensor(y)? = r["y"], y.shape.count >= 2, y.shape[0] == x.shape[0], y.shape[1] == x.shape[1] else { return nil }
        let tasks = x.shape[0], examples = x.shape[1]
        let t = min(task, tasks - 1)
        guard var images = try images(x, leading: 2, first: t * examples, limit: examples) else { return nil }
        // One label per example: the class (classification) or the target values.
        let perExample = y.shape.dropFirst(2).reduce(1, *)
        images.labels = y.withUnsafeBufferPointer { ys in
            images.values.indices.map { e in
                let start = (t * examples + e) * perExample
                return ys[start..<(start + perExample)].prefix(8).map { SVG.label(Double($0)) }.joined(separator: ", ")
            }
        }
        return (images, tasks)
    }

    // MARK: Plots of values

    /// A tensor of images (see the type's comment); throws when its shape is not one.
    static func tensor(_ t: Tensor) throws -> String {
        let shape = t.shape
        let described = "a tensor of shape \(shape) (images are [H, W], [H, W, C], [N, H, W], [N, H, W, C] or [tasks, N, H, W, C], C 1 or 3)"
        switch shape.count {
        case 2, 3:
            // [H, W], [H, W, 1|3] (one image) or [N, H, W].
            let one = shape.count == 2 || shape[2] == 1 || shape[2] == 3
            guard var images = try images(t, leading: one ? 0 : 1) else { throw Plot.PlotError(described) }
            if one { images.labels = ["\(shape[0]) x \(shape[1])"] }
            return render(title: one ? "an image" : count(shape[0], "image"), sections: [Section(title: "", images: images, byClass: false, tint: "none")])
        case 4:
            guard let images = try images(t, leading: 1) else { throw Plot.PlotError(described) }
            return render(title: count(shape[0], "image"), sections: [Section(title: "", images: images, byClass: false, tint: "none")])
        case 5:
            let n = shape[1], drawn = min(shape[0], 20)
            var sections: [Section] = []
            for task in 0..<drawn {
                guard let images = try images(t, leading: 2, first: task * n, limit: n) else { throw Plot.PlotError(described) }
                sections.append(Section(title: "task \(task)", images: images, byClass: false, tint: task % 2 == 0 ? "#f3f6fb" : "#fbf5ef"))
            }
            guard !sections.isEmpty else { throw Plot.PlotError(described) }
            return render(title: shape[0] == 1 ? count(n, "image") : "\(shape[0]) tasks of \(count(n, "image"))", sections: sections,
                          notes: drawn < shape[0] ? ["the first \(drawn) of \(shape[0]) tasks"] : [])
        default:
            throw Plot.PlotError(described)
        }
    }

    /// A meta-batch < support query tasks > or a split < x y tasks > of images; nil when the
    /// record is neither.
    static func record(_ r: Record) throws -> String? {
        if case let .record(s)? = r["support"], case let .record(q)? = r["query"],
           let support = try split(s), let query = try split(q),
           (support.images.height, support.images.width, support.images.channels) == (query.images.height, query.images.width, query.images.channels) {
            var notes: [String] = []
            if support.tasks > 1 { notes.append("the first of \(support.tasks) tasks") }
            let classes = Set(support.images.labels).count
            return render(title: "A task: support and query images with their labels",
                          sections: [Section(title: "support: \(count(support.images.total, "image")), \(count(classes, "class", "classes"))",
                                             images: support.images, byClass: true, tint: "#f3f6fb"),
                                     Section(title: "query: \(count(query.images.total, "image"))", images: query.images, byClass: true, tint: "#fbf5ef")],
                          notes: notes)
        }
        if let s = try split(r) {
            return render(title: "\(count(s.images.total, "image")) with their labels",
                          sections: [Section(title: "", images: s.images, byClass: true, tint: "none")],
                          notes: s.tasks > 1 ? ["the first of \(s.tasks) tasks"] : [])
        }
        return nil
    }

    static func count(_ n: Int, _ one: String, _ many: String? = nil) -> String { "\(n) \(n == 1 ? one : many ?? one + "s")" }

    // MARK: Drawing

    /// Labels in `columns` equal runs (class 0's images, then class 1's, ...): the columns, or
    /// nil when they are not.
    static func classColumns(_ labels: [String]) -> Int? {
        guard !labels.isEmpty else { return nil }
        var runs: [(String, Int)] = []
        for l in labels {
            if let last = runs.last, last.0 == l { runs[runs.count - 1].1 += 1 } else { runs.append((l, 1)) }
        }
        guard runs.count <= 20, Set(runs.map(\.0)).count == runs.count, Set(runs.map(\.1)).count == 1 else { return nil }
        return runs.count
    }

    static func render(title: String, sections all: [Section], notes given: [String] = []) -> String {
        var notes = given
        // Bounded work and file size: images past the limits are left out, and said so.
        let first = all[0].images
        let side = max(first.height, first.width)
        let factor = max(1, min(8, 64 / max(side, 1)))
        let perImage = first.height * factor * first.width * factor * first.channels
        let allowed = max(1, min(maximumImages, maximumPixelValues / max(perImage, 1)))
        var sections: [Section] = []
        var kept = 0, total = 0
        for var s in all {
            total += s.images.total
            let take = min(s.images.values.count, allowed - kept)
            if take < s.images.values.count {
                s.images.values = Array(s.images.values.prefix(take))
                s.images.labels = Array(s.images.labels.prefix(take))
            }
            kept += take
            if take > 0 || sections.isEmpty { sections.append(s) }
        }
        if kept < total { notes.append("\(kept) of \(total) images drawn") }

        // Values outside [0, 1] (normalised inputs) are scaled from their range to black..white.
        var lo = Float.infinity, hi = -Float.infinity, bad = 0
        for s in sections { for v in s.images.values { for p in v { if p.isFinite { lo = min(lo, p); hi = max(hi, p) } else { bad += 1 } } } }
        let scaled = lo < 0 || hi > 1
        if scaled, hi > lo {
            notes.append("values from \(SVG.label(Double(lo))) to \(SVG.label(Double(hi))) drawn from black to white")
        }
        if bad > 0 { notes.append("\(count(bad, "value")) not finite, drawn black") }
        func level(_ p: Float) -> Float {
            guard p.isFinite else { return 0 }
            if !scaled { return p }
            return hi > lo ? (p - lo) / (hi - lo) : 0.5
        }

        // Display size: whole-pixel upscaling to about 64 pixels; large images shrink to 128.
        let (h, w, c) = (first.height, first.width, first.channels)
        let shrink = min(1, 128 / Double(max(h, w) * factor))
        let cellW = Double(w * factor) * shrink, cellH = Double(h * factor) * shrink
        let labelHeight = 14.0, gap = 8.0
        let pitchX = max(cellW, 24) + gap, pitchY = cellH + labelHeight + gap
        let layouts: [(columns: Int, byClass: Int?)] = sections.map { s in
            if s.byClass, let k = classColumns(s.images.labels) { return (k, k) }
            let n = s.images.values.count
            // Rows as full as each other: 12 images in 2 rows of 6, not 11 and 1.
            let most = max(1, min(Int(800 / pitchX), 12)), rows = max(1, (n + most - 1) / most)
            return (max(1, (n + rows - 1) / rows), nil)
        }
        let left = 20.0, top = 44.0, sectionTitle = 22.0, pad = 8.0
        let contentWidth = layouts.map { Double($0.columns) * pitchX }.max() ?? pitchX
        var heights: [Double] = []
        for (s, l) in zip(sections, layouts) {
            let n = s.images.values.count
            let rows = l.byClass.map { k in n / max(k, 1) } ?? (n + l.columns - 1) / max(l.columns, 1)
            heights.append((s.title.isEmpty ? 0 : sectionTitle) + Double(max(rows, 1)) * pitchY + pad)
        }
        let width = max(left * 2 + contentWidth + pad * 2, SVG.textWidth(title, size: 14) + left * 2, 240)
        let height = top + heights.reduce(0, +) + Double(sections.count - 1) * 12 + 10 + Double(notes.count) * 15 + 6
        var svg = SVG(width: Int(width.rounded(.up)), height: Int(height.rounded(.up)))
        svg.text(title, x: left, y: 24, size: 14, bold: true)
        var y = top
        for (k, (s, l)) in zip(sections, layouts).enumerated() {
            let start = y
            if s.tint != "none" { svg.rect(left - 6, y - 4, contentWidth + pad * 2 + 12, heights[k], fill: s.tint, stroke: "#c8c8c8") }
            if !s.title.isEmpty {
                svg.text(s.title, x: left + pad, y: y + 12, size: 12, bold: true)
                y += sectionTitle
            }
            let n = s.images.values.count
            let rowsPerColumn = l.byClass.map { n / max($0, 1) } ?? 0
            for i in 0..<n {
                // By class: column = class, row = the image's place in its class.
                let (col, row) = l.byClass != nil ? (i / max(rowsPerColumn, 1), i % max(rowsPerColumn, 1)) : (i % l.columns, i / l.columns)
                let x = left + pad + Double(col) * pitchX + (pitchX - gap - cellW) / 2, iy = y + Double(row) * pitchY
                let pixels = upscale(s.images.values[i].map(level), height: h, width: w, channels: c, factor: factor)
                let label = s.images.labels[i]
                if let png = try? ColorImage(width: w * factor, height: h * factor, channels: c, pixels: pixels).pngData() {
                    svg.image(png: png, x: x, y: iy, width: cellW, height: cellH, title: s.title.isEmpty ? "image \(i): \(label)" : "\(s.title.split(separator: ":").first ?? "") \(i): \(label)")
                }
                svg.rect(x, iy, cellW, cellH, fill: "none", stroke: "#999")
                svg.text(label, x: x + cellW / 2, y: iy + cellH + 11, anchor: "middle", size: 10)
            }
            y = start + heights[k] + 12
        }
        for (i, note) in notes.enumerated() {
            svg.text(note, x: left, y: y + Double(i) * 15, size: 10, fill: "#444")
        }
        return svg.document
    }

    /// Nearest-neighbour upscaling by a whole factor, channels last.
    static func upscale(_ p: [Float], height h: Int, width w: Int, channels c: Int, factor f: Int) -> [Float] {
        guard f > 1 else { return p }
        var out = [Float](repeating: 0, count: h * f * w * f * c)
        for row in 0..<(h * f) {
            for col in 0..<(w * f) {
                let src = ((row / f) * w + col / f) * c, dst = (row * w * f + col) * c
                for k in 0..<c { out[dst + k] = p[src + k] }
            }
        }
        return out
    }
}
