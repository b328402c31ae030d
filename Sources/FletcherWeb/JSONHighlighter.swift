import FletcherDomain
import FletcherJSON

/// Compact JSON as pretty-printed HTML — two-space indents, one member or element per line — with
/// each token in a `<span>` whose class names its kind (`key`, `string`, `number`, `literal`,
/// `punctuation`): the highlighting happens here, on the server, and the page needs no script for
/// it. One pass over the UTF-8 bytes (the plan page shows a plan's whole JSON on every view).
enum JSONHighlighter {
    /// `json` must be compact JSON (no space between tokens), as `JSONBytes` and `PlanJSON` write it.
    static func html(compact json: [UInt8]) -> HTML {
        var out: [UInt8] = []
        out.reserveCapacity(json.count * 3)
        var depth = 0
        var index = 0
        func newline() {
            out.append(0x0A)
            out.append(contentsOf: repeatElement(0x20, count: depth * 2))
        }
        func span(_ kind: StaticString, _ range: Range<Int>) {
            out.append(contentsOf: #"<span class="j-"#.utf8)
            out.append(contentsOf: UnsafeBufferPointer(start: kind.utf8Start, count: kind.utf8CodeUnitCount))
            out.append(contentsOf: #"">"#.utf8)
            HTML.escape(json[range], into: &out)
            out.append(contentsOf: "</span>".utf8)
        }
        while index < json.count {
            let byte = json[index]
            switch byte {
            case UInt8(ascii: "\""):
                var end = index + 1
                while end < json.count, json[end] != UInt8(ascii: "\"") { end += json[end] == UInt8(ascii: "\\") ? 2 : 1 }
                end = min(end + 1, json.count)
                span(end < json.count && json[end] == UInt8(ascii: ":") ? "key" : "string", index..<end)
                index = end
            case UInt8(ascii: "{"), UInt8(ascii: "["):
                let close = byte == UInt8(ascii: "{") ? UInt8(ascii: "}") : UInt8(ascii: "]")
                if index + 1 < json.count, json[index + 1] == close {
                    span("punctuation", index..<index + 2)
                    index += 2
                } else {
                    span("punctuation", index..<index + 1)
                    depth += 1
                    newline()
                    index += 1
                }
            case UInt8(ascii: "}"), UInt8(ascii: "]"):
                depth = max(0, depth - 1)
                newline()
                span("punctuation", index..<index + 1)
                index += 1
            case UInt8(ascii: ","):
                span("punctuation", index..<index + 1)
                newline()
                index += 1
            case UInt8(ascii: ":"):
                span("punctuation", index..<index + 1)
                out.append(0x20)
                index += 1
            case UInt8(ascii: "-"), UInt8(ascii: "0")...UInt8(ascii: "9"):
                var end = index + 1
                while end < json.count, Self.continuesNumber(json[end]) { end += 1 }
                span("number", index..<end)
                index = end
            case UInt8(ascii: "a")...UInt8(ascii: "z"):
                var end = index + 1
                while end < json.count, (UInt8(ascii: "a")...UInt8(ascii: "z")).contains(json[end]) { end += 1 }
                span("literal", index..<end)
                index = end
            case 0x20, 0x0A, 0x0D, 0x09:
                index += 1  // (not in compact JSON; the layout is this function's own)
            default:
                span("punctuation", index..<index + 1)
                index += 1
            }
        }
        return HTML(raw: String(decoding: out, as: UTF8.self))
    }

    private static func continuesNumber(_ byte: UInt8) -> Bool {
        switch byte {
        case UInt8(ascii: "0")...UInt8(ascii: "9"), UInt8(ascii: "."), UInt8(ascii: "e"), UInt8(ascii: "E"),
            UInt8(ascii: "+"), UInt8(ascii: "-"):
            true
        default: false
        }
    }

    /// A free-form value (`extra`, `passthrough`, `passback`) the same way.
    static func html(_ value: JSONValue) -> HTML {
        var json = JSONBytes()
        json.json(value)
        return html(compact: json.bytes)
    }
}
