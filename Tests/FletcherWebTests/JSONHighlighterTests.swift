@testable import FletcherWeb
import FletcherDomain
import FletcherJSON
import FletcherHTTP
import FletcherTestSupport
import Foundation
import Testing

@Suite("JSON highlighting")
struct JSONHighlighterTests {
    @Test func compactJSONIsLaidOutAndEveryTokenMarked() {
        let value = JSONValue.object([
            "name": .string("<b>\"x\" & 'y'</b>"), "n": .array([.integer(-12), .number(2.5e-7)]), "ok": .bool(true),
            "none": .null, "empty": .object([:]), "list": .array([]),
        ])
        let html = JSONHighlighter.html(value).text
        let expected = """
            <span class="j-punctuation">{</span>
              <span class="j-key">&quot;empty&quot;</span><span class="j-punctuation">:</span> <span class="j-punctuation">{}</span><span class="j-punctuation">,</span>
              <span class="j-key">&quot;list&quot;</span><span class="j-punctuation">:</span> <span class="j-punctuation">[]</span><span class="j-punctuation">,</span>
              <span class="j-key">&quot;n&quot;</span><span class="j-punctuation">:</span> <span class="j-punctuation">[</span>
                <span class="j-number">-12</span><span class="j-punctuation">,</span>
                <span class="j-number">2.5e-07</span>
              <span class="j-punctuation">]</span><span class="j-punctuation">,</span>
              <span class="j-key">&quot;name&quot;</span><span class="j-punctuation">:</span> <span class="j-string">&quot;&lt;b&gt;\\&quot;x\\&quot; &amp; &#39;y&#39;&lt;/b&gt;&quot;</span><span class="j-punctuation">,</span>
              <span class="j-key">&quot;none&quot;</span><span class="j-punctuation">:</span> <span class="j-literal">null</span><span class="j-punctuation">,</span>
              <span class="j-key">&quot;ok&quot;</span><span class="j-punctuation">:</span> <span class="j-literal">true</span>
            <span class="j-punctuation">}</span>
            """
        #expect(html == expected, "\(html)")
    }

    @Test func aPlansJSONReadsBackFromThePage() throws {
        let plan = try PlanFixture().products("a", "b").edge("a", "b").plan()
        let html = JSONHighlighter.html(compact: PlanJSON.encode(plan)).text
        // Strip the markup and undo the escapes: the plan's JSON, pretty-printed.
        let text = html.replacingOccurrences(of: "<[^>]+>", with: "", options: .regularExpression)
            .replacingOccurrences(of: "&quot;", with: "\"").replacingOccurrences(of: "&#39;", with: "'")
            .replacingOccurrences(of: "&lt;", with: "<").replacingOccurrences(of: "&gt;", with: ">")
            .replacingOccurrences(of: "&amp;", with: "&")
        #expect(text.contains("\n    \"id\": "))
        #expect(try JSONValue(parsing: text) == JSONValue(parsing: String(decoding: PlanJSON.encode(plan), as: UTF8.self)))
    }
}
