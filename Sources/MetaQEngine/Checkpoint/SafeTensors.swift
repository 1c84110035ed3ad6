import Foundation

// Tensor data is copied to and from files as raw bytes: safetensors is little-endian.
#if _endian(big)
#error("metaq checkpoints assume a little-endian machine")
#endif

/// The safetensors file format, the common interchange format for tensors in the ML
/// ecosystem: an 8-byte little-endian header length, a JSON header, then the raw tensor
/// data. The header maps each tensor name to `{"dtype", "shape", "data_offsets": [begin,
/// end]}` (offsets into the data that follows the header) and may hold a `__metadata__` map
/// of strings to strings. metaq writes and reads `F32` tensors only.
///
/// ```swift
/// let bytes = try SafeTensors.encode(["w": Tensor([[1, 2], [3, 4]])], metadata: ["note": "hi"])
/// let file = try SafeTensors.decode(bytes)
/// file.tensors["w"]!.shape   // [2, 2]
/// file.metadata["note"]      // "hi"
/// ```
public enum SafeTensors {
    /// The decoded contents of a safetensors file.
    public struct File: Sendable {
        public var tensors: [String: Tensor]
        /// The `__metadata__` map; nil when the header has none.
        public var metadata: [String: String]?
    }

    /// Headers longer than this are refused as corrupt (the reference implementation's limit).
    public static let maximumHeaderLength = 100_000_000

    /// The bytes of a safetensors file holding `tensors` and `metadata`. Tensors are laid out
    /// in name order, so equal inputs give identical files; the header is padded with spaces
    /// to a multiple of 8 bytes so that the data starts aligned.
    public static func encode(_ tensors: [String: Tensor], metadata: [String: String]?) throws -> [UInt8] {
        var header: [String: Any] = [:]
        if let metadata { header["__metadata__"] = metadata }
        let names = tensors.keys.sorted()
        var offset = 0
        for name in names {
            let t = tensors[name]!
            header[name] = ["dtype": "F32", "shape": t.shape, "data_offsets": [offset, offset + 4 * t.count]] as [String: Any]
            offset += 4 * t.count
        }
        var json = Array(try JSONSerialization.data(withJSONObject: header, options: [.sortedKeys]))
        while (8 + json.count) % 8 != 0 { json.append(UInt8(ascii: " ")) }
        var bytes: [UInt8] = []
        bytes.reserveCapacity(8 + json.count + offset)
        withUnsafeBytes(of: UInt64(json.count).littleEndian) { bytes += $0 }
        bytes += json
        for name in names {
            tensors[name]!.withUnsafeBufferPointer { bytes += UnsafeRawBufferPointer($0) }
        }
        return bytes
    }

    /// Decodes a safetensors file, validating everything before it allocates a tensor: the
    /// header length against the file size, the JSON, every entry's dtype and shape, and
    /// that offsets lie within the data, match the shape and do not overlap.
    ///
    /// - Throws: `CheckpointError` saying what is wrong (`truncated`, `corruptHeader`,
    ///   `foreignFile` for a file that is no safetensors file at all, `unsupported` for a
    ///   dtype other than F32).
    public static func decode(_ bytes: [UInt8]) throws(CheckpointError) -> File {
        guard bytes.count >= 8 else {
            throw CheckpointError(.truncated, "the file has \(bytes.count) byte\(bytes.count == 1 ? "" : "s"); a safetensors file starts with an 8-byte header length")
        }
        var length: UInt64 = 0
        for i in (0..<8).reversed() { length = length << 8 | UInt64(bytes[i]) }
        let plausible = length >= 2 && length <= UInt64(maximumHeaderLength)
        if !plausible || (bytes.count > 8 && bytes[8] != UInt8(ascii: "{")) {
            if let kind = knownForeignKind(bytes) {
                throw CheckpointError(.foreignFile, "this is \(kind), not a safetensors checkpoint")
            }
            if bytes.count > 8, bytes[8] != UInt8(ascii: "{") {
                let start = bytes.prefix(8).map { String(format: "%02x", $0) }.joined(separator: " ")
                throw CheckpointError(.foreignFile, "no JSON header after the 8-byte length (the file starts with \(start))")
            }
            throw CheckpointError(.corruptHeader, "header length \(length) is out of range (2 to \(maximumHeaderLength) bytes)")
        }
        let headerLength = Int(length)
        guard headerLength <= bytes.count - 8 else {
            throw CheckpointError(.truncated, "the header claims \(headerLength) bytes but only \(bytes.count - 8) follow")
        }
        let json: Any
        do {
            json = try JSONSerialization.jsonObject(with: Data(bytes[8..<8 + headerLength]))
        } catch {
            throw CheckpointError(.corruptHeader, "the header is not valid JSON")
        }
        guard let header = json as? [String: Any] else {
            throw CheckpointError(.corruptHeader, "the header is not a JSON object")
        }
        var metadata: [String: String]?
        if let raw = header["__metadata__"] {
            guard let map = raw as? [String: String] else {
                throw CheckpointError(.corruptHeader, "__metadata__ must map strings to strings")
            }
            metadata = map
        }
        let dataStart = 8 + headerLength
        let dataLength = bytes.count - dataStart
        var entries: [(name: String, shape: [Int], begin: Int, end: Int)] = []
        for (name, raw) in header where name != "__metadata__" {
            entries.append(try entry(name, raw, dataLength: dataLength))
        }
        entries.sort { ($0.begin, $0.end) < ($1.begin, $1.end) }
        var previous: (name: String, end: Int)?
        for e in entries where e.end > e.begin {
            if let previous, e.begin < previous.end {
                throw CheckpointError(.corruptHeader, "tensors '\(previous.name)' and '\(e.name)' overlap in the data")
            }
            previous = (e.name, e.end)
        }
        var tensors: [String: Tensor] = [:]
        for e in entries {
            let count = (e.end - e.begin) / 4
            let buffer = TensorBuffer(count: count)
            bytes.withUnsafeBytes { raw in
                UnsafeMutableRawPointer(buffer.pointer).copyMemory(from: raw.baseAddress! + dataStart + e.begin, byteCount: 4 * count)
            }
            tensors[e.name] = Tensor(shape: e.shape, buffer: buffer)
        }
        return File(tensors: tensors, metadata: metadata)
    }

    /// Validates one tensor entry of the header.
    private static func entry(_ name: String, _ raw: Any, dataLength: Int) throws(CheckpointError) -> (name: String, shape: [Int], begin: Int, end: Int) {
        guard let fields = raw as? [String: Any] else {
            throw CheckpointError(.corruptHeader, "the entry of tensor '\(name)' is not a JSON object")
        }
        guard let dtype = fields["dtype"] as? String else {
            throw CheckpointError(.corruptHeader, "tensor '\(name)' has no dtype")
        }
        guard dtype == "F32" else {
            throw CheckpointError(.unsupported, "tensor '\(name)' has dtype \(dtype); metaq reads F32 tensors only")
        }
        guard let shape = integers(fields["shape"]), shape.allSatisfy({ $0 >= 0 }) else {
            throw CheckpointError(.corruptHeader, "tensor '\(name)' has no valid shape (a list of non-negative integers)")
        }
        guard let offsets = integers(fields["data_offsets"]), offsets.count == 2 else {
            throw CheckpointError(.corruptHeader, "tensor '\(name)' has no valid data_offsets (two integers)")
        }
        let (begin, end) = (offsets[0], offsets[1])
        guard begin >= 0, begin <= end else {
            throw CheckpointError(.corruptHeader, "tensor '\(name)' has data_offsets [\(begin), \(end)], which do not form a range")
        }
        guard end <= dataLength else {
            throw CheckpointError(.truncated, "tensor '\(name)' ends at byte \(end) of the data, but the file holds \(dataLength) bytes of data")
        }
        var elements = 1
        for d in shape {
            let (product, overflow) = elements.multipliedReportingOverflow(by: d)
            guard !overflow, product <= dataLength / 4 + 1 else {
                throw CheckpointError(.corruptHeader, "tensor '\(name)' has shape \(shape), larger than the file")
            }
            elements = product
        }
        guard elements * 4 == end - begin else {
            throw CheckpointError(.corruptHeader, "tensor '\(name)' has shape \(shape) (\(elements * 4) bytes of F32) but data_offsets span \(end - begin) bytes")
        }
        return (name, shape, begin, end)
    }

    /// A JSON array of integers (whole numbers only).
    private static func integers(_ raw: Any?) -> [Int]? {
        guard let items = raw as? [Any] else { return nil }
        var result: [Int] = []
        for item in items {
            guard let n = item as? NSNumber else { return nil }
            let d = n.doubleValue
            guard d == d.rounded(), abs(d) < 0x1p52 else { return nil }
            result.append(Int(d))
        }
        return result
    }

    /// Recognises a few common file types by their first bytes, for a clearer error.
    private static func knownForeignKind(_ bytes: [UInt8]) -> String? {
        let signatures: [(prefix: [UInt8], kind: String)] = [
            ([0x89, 0x50, 0x4E, 0x47, 0x0D, 0x0A, 0x1A, 0x0A], "a PNG image"),
            ([0x50, 0x4B, 0x03, 0x04], "a ZIP archive (a PyTorch .pt file is one)"),
            ([0x1F, 0x8B], "a gzip file"),
        ]
        return signatures.first { bytes.starts(with: $0.prefix) }?.kind
    }
}
