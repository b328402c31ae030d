/// Pretty-printed JSON text as HTML with each token in a `<span>` whose class names its kind
/// (`key`, `string`, `number`, `literal`, `punctuation`): the highlighting happens here, on the
/// server, and the page needs no script for it.
enum JSONHighlighter {
    static func html(_ json: String) -> HTML {
        var out = ""
        out.reserveCapacity(json.utf8.count * 2)
        let scalars = Array(json.unicodeScalars)
        var index = 0
        func span(_ kind: String, _ text: String) {
            out += "<span class=\"j-\(kind)\">" + HTML.escape(text) + "</span>"
        }
        while index < scalars.count {
            let scalar = scalars[index]
            switch scalar {
            case "\"":
                var end = index + 1
                while end < scalars.count, scalars[end] != "\"" { end += scalars[end] == "\\" ? 2 : 1 }
                end = min(end, scalars.count - 1)
                let text = String(String.UnicodeScalarView(scalars[index...end]))
                // A string followed (after spaces) by a colon is a key.
                var next = end + 1
                while next < scalars.count, scalars[next] == " " { next += 1 }
                span(next < scalars.count && scalars[next] == ":" ? "key" : "string", text)
                index = end + 1
            case "{", "}", "[", "]", ",", ":":
                span("punctuation", String(scalar))
                index += 1
            case "-", "0"..."9":
                var end = index
                while end < scalars.count, "+-.eE0123456789".unicodeScalars.contains(scalars[end]) { end += 1 }
                span("number", String(String.UnicodeScalarView(scalars[index..<end])))
                index = end
            case "t", "f", "n":
                var end = index
                while end < scalars.count, ("a"..."z").contains(scalars[end]) { end += 1 }
                span("literal", String(String.UnicodeScalarView(scalars[index..<end])))
                index = end
            default:
                out += HTML.escape(String(scalar))
                index += 1
            }
        }
        return HTML(raw: out)
    }
}
