import FletcherDomain
import FletcherJSON
import Foundation

/// Reads a plan submission (`openapi.yaml`'s `PlanSubmission`) as its body arrives, chunk by chunk:
/// each data product and dependency is read as soon as its bytes are in, and only the bytes of the
/// one value still arriving are held (a 100,000-product submission's body is 53 MB; its rows, 23 MB).
///
/// The document's own structure — the object, its members, the two arrays and their separators —
/// is followed here byte by byte; each complete value (a member's name or value, an array's element)
/// is then read with `JSONParser`. Whatever this reads, the generated decoder reads identically
/// (tests compare both): members of no meaning here are checked and skipped, and of a repeated
/// member name the first counts, as in `JSONDecoder`; so does a trailing comma in the document's
/// object or its two arrays (inside a row, one is refused: RFC 8259 has none, and only a body of
/// over `PlanRoutes.keptBytes` is refused for it rather than handed to the generated
/// decoder). Anything it cannot read is `Declined`, with the reason.
struct PlanSubmissionReader {
    /// Why a body is not a submission this reader takes.
    struct Declined: Error, CustomStringConvertible {
        var reason: String
        var description: String { reason }
    }

    private enum Rows: String {
        case products = "data_products"
        case dependencies = "dependencies"
    }

    /// Where in the document the next byte is.
    private enum Step {
        /// Before the document's opening brace.
        case begin
        /// Before a member's name, or the closing brace (after a comma too: `JSONDecoder` takes a
        /// trailing comma).
        case memberName
        /// In a member's name.
        case name
        case colon(String)
        case valueStart(String)
        /// In a member's value (all but the two arrays' elements).
        case value(String)
        case afterMember
        /// Before an array's element, or the closing bracket (after a comma too, as `JSONDecoder`).
        case elementStart(Rows)
        /// In an array's element.
        case element(Rows)
        case afterElement(Rows)
        /// After the document: only whitespace may follow.
        case end
    }

    private var step = Step.begin
    /// Finds where the value being read ends.
    private var framer = ValueFramer()
    /// The bytes of a value begun in an earlier chunk.
    private var pending: [UInt8] = []
    /// The body's bytes before the current chunk.
    private var consumed = 0
    /// The body's announced length, if any: the rows' arrays are made once for as many rows as
    /// the rest of it could hold.
    private let expectedBytes: Int?

    private var datasetId: UUID?
    private var datasetExtra: JSONValue?
    private var datasetDeadline: Date?
    private var dataProducts: [PlanSubmission.DataProduct]?
    private var dependencies: [PlanSubmission.Dependency]?
    private var seen: Set<String> = []

    init(expectedBytes: Int? = nil) {
        self.expectedBytes = expectedBytes
    }

    /// Reads the next bytes of the body.
    mutating func read(_ chunk: UnsafeRawBufferPointer) throws(Declined) {
        let bytes = chunk.assumingMemoryBound(to: UInt8.self)
        var index = 0
        let count = bytes.count
        func skipSpace() {
            while index < count, Self.isSpace(bytes[index]) { index += 1 }
        }
        while index < count {
            switch step {
            case .begin:
                skipSpace()
                guard index < count else { break }
                guard bytes[index] == UInt8(ascii: "{") else { throw at(index, "a JSON object was expected") }
                index += 1
                step = .memberName
            case .memberName:
                skipSpace()
                guard index < count else { break }
                if bytes[index] == UInt8(ascii: "}") {
                    index += 1
                    step = .end
                } else if bytes[index] == UInt8(ascii: "\"") {
                    framer = ValueFramer()
                    step = .name
                } else {
                    throw at(index, "a member name was expected")
                }
            case .colon(let name):
                skipSpace()
                guard index < count else { break }
                guard bytes[index] == UInt8(ascii: ":") else { throw at(index, "':' was expected") }
                index += 1
                step = .valueStart(name)
            case .valueStart(let name):
                skipSpace()
                guard index < count else { break }
                if let rows = Rows(rawValue: name), !seen.contains(name), bytes[index] == UInt8(ascii: "[") {
                    seen.insert(name)
                    index += 1
                    startRows(rows, remaining: expectedBytes.map { $0 - consumed - index })
                    step = .elementStart(rows)
                } else {
                    framer = ValueFramer()
                    step = .value(name)
                }
            case .afterMember:
                skipSpace()
                guard index < count else { break }
                switch bytes[index] {
                case UInt8(ascii: ","): step = .memberName
                case UInt8(ascii: "}"): step = .end
                default: throw at(index, "',' or '}' was expected")
                }
                index += 1
            case .elementStart(let rows):
                skipSpace()
                guard index < count else { break }
                if bytes[index] == UInt8(ascii: "]") {
                    index += 1
                    step = .afterMember
                } else {
                    framer = ValueFramer()
                    step = .element(rows)
                }
            case .afterElement(let rows):
                skipSpace()
                guard index < count else { break }
                switch bytes[index] {
                case UInt8(ascii: ","): step = .elementStart(rows)
                case UInt8(ascii: "]"): step = .afterMember
                default: throw at(index, "',' or ']' was expected in '\(rows.rawValue)'")
                }
                index += 1
            case .end:
                skipSpace()
                guard index < count else { break }
                throw at(index, "text after the submission")
            case .name, .value, .element:
                let start = index
                guard let end = framer.end(in: bytes, from: start) else {
                    pending.append(contentsOf: UnsafeBufferPointer(rebasing: bytes[start...]))
                    index = count
                    break
                }
                index = end
                let value = UnsafeRawBufferPointer(rebasing: chunk[start..<end])
                if pending.isEmpty {
                    try complete(value, endingAt: consumed + end)
                } else {
                    pending.append(contentsOf: value)
                    // Taken out while it is read (`complete` changes `self`), then put back emptied
                    // with its room, for the next value that spans chunks.
                    var whole: [UInt8] = []
                    swap(&whole, &pending)
                    let outcome = whole.withUnsafeBytes { whole in
                        Result { () throws(Declined) in try complete(whole, endingAt: consumed + end) }
                    }
                    whole.removeAll(keepingCapacity: true)
                    pending = whole
                    try outcome.get()
                }
            }
        }
        consumed += count
    }

    /// The submission, once the body has ended.
    mutating func finish() throws(Declined) -> PlanSubmission {
        guard case .end = step else { throw Declined(reason: "the body ended before the submission did (byte \(consumed))") }
        guard let datasetId else { throw Declined(reason: "'dataset.id' is missing") }
        guard let dataProducts else { throw Declined(reason: "'data_products' is missing") }
        guard let dependencies else { throw Declined(reason: "'dependencies' is missing") }
        return PlanSubmission(
            datasetId: datasetId, datasetExtra: datasetExtra, datasetDeadline: datasetDeadline, dataProducts: dataProducts.trimmed(),
            dependencies: dependencies.trimmed())
    }

    /// The arrays are made for as many rows as the rest of the body could hold: rows appended one
    /// by one are copied as the array doubles (a 100,000-product submission's dependencies were
    /// copied beside its body), and places never written take no memory.
    private mutating func startRows(_ rows: Rows, remaining: Int?) {
        switch rows {
        case .products:
            var products: [PlanSubmission.DataProduct] = []
            if let remaining { products.reserveCapacity(max(0, remaining) / PlanSubmission.DataProduct.leastJSONBytes) }
            dataProducts = products
        case .dependencies:
            var dependencies: [PlanSubmission.Dependency] = []
            if let remaining { dependencies.reserveCapacity(max(0, remaining) / PlanSubmission.Dependency.leastJSONBytes) }
            self.dependencies = dependencies
        }
    }

    /// Reads the value that has just ended (`bytes`, ending at the body's byte `end`).
    private mutating func complete(_ bytes: UnsafeRawBufferPointer, endingAt end: Int) throws(Declined) {
        let start = end - bytes.count
        func reading<T>(_ what: String, _ body: (inout JSONParser) throws(JSONSyntaxError) -> T) throws(Declined) -> T {
            do {
                return try JSONParser.read(bytes, validatingUTF8: true) { (parser: inout JSONParser) throws(JSONSyntaxError) in
                    let value = try body(&parser)
                    guard !parser.sawNUL else { throw parser.failure("text may not hold a NUL character") }
                    return value
                }
            } catch {
                throw Declined(reason: "\(what): \(error.reason) (byte \(start + error.offset))")
            }
        }
        switch step {
        case .name:
            step = .colon(try reading("a member name") { (parser: inout JSONParser) throws(JSONSyntaxError) in try parser.readString() })
        case .value(let name):
            if name == "dataset", !seen.contains(name) {
                seen.insert(name)
                let dataset = try reading("'dataset'") { (parser: inout JSONParser) throws(JSONSyntaxError) in
                    try PlanSubmission.dataset(&parser)
                }
                (datasetId, datasetExtra, datasetDeadline) = (dataset.id, dataset.extra, dataset.deadline)
            } else if Rows(rawValue: name) != nil, !seen.contains(name) {
                throw Declined(reason: "'\(name)' must be an array (byte \(start))")
            } else {
                // A member of no meaning here, or a repeated one (the first counts): valid JSON, skipped.
                try reading("'\(name)'") { (parser: inout JSONParser) throws(JSONSyntaxError) in try parser.skipValue() }
            }
            step = .afterMember
        case .element(let rows):
            switch rows {
            case .products:
                let product = try reading("data_products[\(dataProducts?.count ?? 0)]") {
                    (parser: inout JSONParser) throws(JSONSyntaxError) in try PlanSubmission.dataProduct(&parser)
                }
                dataProducts?.append(product)
            case .dependencies:
                let dependency = try reading("dependencies[\(dependencies?.count ?? 0)]") {
                    (parser: inout JSONParser) throws(JSONSyntaxError) in try PlanSubmission.dependency(&parser)
                }
                dependencies?.append(dependency)
            }
            step = .afterElement(rows)
        default:
            preconditionFailure("only a name, a value or an element ends")
        }
    }

    private func at(_ index: Int, _ reason: String) -> Declined {
        Declined(reason: "\(reason) (byte \(consumed + index))")
    }

    private static func isSpace(_ byte: UInt8) -> Bool {
        byte == 0x20 || byte == 0x0A || byte == 0x0D || byte == 0x09
    }
}

/// Finds where a JSON value ends, over as many chunks as it spans, without reading it: strings
/// (with their escapes) and the nesting of arrays and objects are followed; a number or literal
/// ends before the first byte that cannot continue it. A value that is not valid JSON is then
/// refused by the parser that reads the bytes found.
struct ValueFramer {
    private var started = false
    private var depth = 0
    private var inString = false
    private var escaped = false
    /// A number or literal.
    private var bare = false

    /// The index just past the value's end in `bytes` (from `start`), or nil when it goes on past them.
    mutating func end(in bytes: UnsafeBufferPointer<UInt8>, from start: Int) -> Int? {
        var index = start
        if !started, index < bytes.count {
            started = true
            switch bytes[index] {
            case UInt8(ascii: "{"), UInt8(ascii: "["): depth = 1
            case UInt8(ascii: "\""): inString = true
            default: bare = true
            }
            index += 1
        }
        if bare {
            while index < bytes.count {
                switch bytes[index] {
                case 0x20, 0x0A, 0x0D, 0x09, UInt8(ascii: ","), UInt8(ascii: "}"), UInt8(ascii: "]"): return index
                default: index += 1
                }
            }
            return nil
        }
        while index < bytes.count {
            let byte = bytes[index]
            index += 1
            if inString {
                if escaped {
                    escaped = false
                } else if byte == UInt8(ascii: "\\") {
                    escaped = true
                } else if byte == UInt8(ascii: "\"") {
                    inString = false
                    if depth == 0 { return index }
                }
                continue
            }
            switch byte {
            case UInt8(ascii: "\""): inString = true
            case UInt8(ascii: "{"), UInt8(ascii: "["): depth += 1
            case UInt8(ascii: "}"), UInt8(ascii: "]"):
                depth -= 1
                if depth == 0 { return index }
            default: break
            }
        }
        return nil
    }
}

extension Array {
    /// The same elements in storage of their size, when the array has many more places and its
    /// storage is small enough to come from the allocator's heaps (where unused places may be
    /// pages already in use). Bigger storage is mapped on its own (the server sets glibc's mmap
    /// threshold to 4 MiB), and places never written there take no memory: copying would only
    /// hold the rows twice for a moment.
    fileprivate func trimmed() -> [Element] {
        guard capacity - count > count / 4, capacity * MemoryLayout<Element>.stride < 4 << 20 else { return self }
        var trimmed: [Element] = []
        trimmed.reserveCapacity(count)
        trimmed.append(contentsOf: self)
        return trimmed
    }
}
