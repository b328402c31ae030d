import FletcherDomain
import FletcherJSON
import FletcherStore
import Foundation

/// The plan's timeline: for each recently active data product, when it was queued, running, and
/// how it ended — Gantt-style, drawn as SVG on the server from the state-change history.
enum TimelineView {
    /// State changes read for the timeline, and products shown.
    static let eventLimit = 2_000
    static let productLimit = 60

    private struct Segment {
        var state: DataProductState
        var start: Date
        var end: Date?
    }

    static func section(plan: Plan, events: [ProductEvent], now: Date) -> HTML {
        var segments: [UUID: [Segment]] = [:]
        for event in events.reversed() {
            guard case .stateChange(let change, _) = event.kind else { continue }
            let id = change.dataProductId
            if var list = segments[id], !list.isEmpty {
                list[list.count - 1].end = event.at
                segments[id] = list
            }
            segments[id, default: []].append(Segment(state: change.to, start: event.at))
        }
        let byId = Dictionary(plan.dataProducts.map { ($0.id, $0) }, uniquingKeysWith: { first, _ in first })
        // Products in the order they were first queued (or otherwise set going).
        var started: [UUID: Date] = [:]
        for (id, list) in segments where byId[id] != nil {
            if let first = list.first(where: { $0.state != .waiting }) { started[id] = first.start }
        }
        let shown = started.keys.sorted { (started[$0]!, $0.uuidString) < (started[$1]!, $1.uuidString) }.suffix(productLimit)
        guard !shown.isEmpty, let start = shown.compactMap({ started[$0] }).min() else { return "" }
        let end = max(now, start.addingTimeInterval(1))
        let span = end.timeIntervalSince(start)
        let labelWidth = 200.0, chartWidth = 760.0, rowHeight = 22.0
        func x(_ date: Date) -> Double { labelWidth + chartWidth * date.timeIntervalSince(start) / span }
        var rows: [HTML] = []
        for (row, id) in shown.enumerated() {
            let product = byId[id]!
            let y = Double(row) * rowHeight + 4
            var shapes: [HTML] = []
            for segment in segments[id]! where segment.state != .waiting {
                let from = x(segment.start)
                let title = "\(product.name):\(product.version) \(segment.state.rawValue) from \(RFC3339.readable(segment.start))"
                switch segment.state {
                case .queued, .running:
                    let to = max(from + 2, x(segment.end ?? end))
                    shapes.append(
                        "<rect class=\"tl \(segment.state.rawValue)\" x=\"\(format(from))\" y=\"\(format(y + 3))\" width=\"\(format(to - from))\" height=\"\(format(rowHeight - 10))\" rx=\"3\"><title>\(title)</title></rect>"
                    )
                default:
                    shapes.append(
                        "<circle class=\"tl \(segment.state.rawValue)\" cx=\"\(format(from))\" cy=\"\(format(y + rowHeight / 2 - 2))\" r=\"5\"><title>\(title)</title></circle>"
                    )
                }
            }
            rows.append(
                """
                <g><a href="/plan/\(plan.dataset.id.lowercased)/product/\(id.lowercased)">\
                <text x="4" y="\(format(y + rowHeight / 2 + 2))" class="tl-label">\(truncated("\(product.name):\(product.version)"))</text></a>\
                \(shapes)</g>
                """)
        }
        let height = Double(shown.count) * rowHeight + 30
        let axisY = height - 12
        return """
            <section class="timeline" aria-labelledby="timeline-title">
            <h2 id="timeline-title">Timeline</h2>
            <details><summary>When the \(shown.count) most recently active data products were queued, ran and finished</summary>
            <div class="table-scroll"><svg class="timeline-chart" viewBox="0 0 \(format(labelWidth + chartWidth + 10)) \(format(height))" \
            role="img" aria-label="Timeline of data product runs">
            \(rows)
            <line class="tl-axis" x1="\(format(labelWidth))" y1="\(format(axisY - 6))" x2="\(format(labelWidth + chartWidth))" y2="\(format(axisY - 6))"/>
            <text class="tl-time" x="\(format(labelWidth))" y="\(format(axisY + 6))">\(RFC3339.readable(start))</text>
            <text class="tl-time" x="\(format(labelWidth + chartWidth))" y="\(format(axisY + 6))" text-anchor="end">\(RFC3339.readable(end))</text>
            </svg></div>
            <ul class="legend"><li><span class="badge state queued">queued</span></li><li><span class="badge state running">running</span></li>\
            <li><span class="badge state success">success</span> and <span class="badge state failed">failed</span> end a run</li></ul>
            </details>
            </section>
            """
    }

    /// One decimal, as `%.1f` writes it (without `String(format:)`, which is slow).
    private static func format(_ value: Double) -> String {
        let tenths = Int((abs(value) * 10).rounded())
        return (value < 0 && tenths > 0 ? "-" : "") + "\(tenths / 10).\(tenths % 10)"
    }

    private static func truncated(_ text: String) -> String {
        text.count > 28 ? String(text.prefix(27)) + "…" : text
    }
}
