import FletcherDomain
import FletcherHTTP
import FletcherStore
import Foundation
import Hummingbird

/// The attention page, its fragments and its live stream (docs/RULES.md rule 33).
extension WebUI {
    /// How often the attention page is told to look again at most: a busy server changes many
    /// datasets a second, and the page reads across all of them.
    static let attentionCoalescing = Duration.seconds(1)
    /// What publishes no change notice (a circuit opening) is seen this often.
    static let attentionPoll = Duration.seconds(5)

    /// `GET /attention`: the page; with `fragment=1` its live part alone, with `fragment=summary`
    /// the home page's counts.
    func attentionPage(_ request: Request) async throws -> Response {
        let form = FormQuery(request)
        let filter = AttentionReport.Filter(form)
        if form["fragment"] == "summary" {
            let report = try await AttentionReport.read(store, filter: filter, scope: .counts)
            return html(AttentionView.counts(report, linkPrefix: "/attention"))
        }
        let report = try await AttentionReport.read(store, filter: filter)
        switch form["fragment"] {
        case .some: return html(AttentionView.body(report))
        case nil:
            let visitor = await sessions.visitor(request)
            return html(AttentionView.page(report: report, filter: filter, visitor: visitor, assets: assets))
        }
    }

    /// `GET /attention/events`: server-sent events telling the page to fetch its live part again,
    /// after any dataset changed (within `attentionCoalescing`) and every `attentionPoll`.
    func attentionEvents(_ request: Request) async throws -> Response {
        let changes = store.changeFeed.subscribe()
        let ticks = LiveTicks.merged(
            changes: changes, coalescing: Self.attentionCoalescing, poll: Self.attentionPoll, shutdown: Self.gracefulShutdown)
        let body = ResponseBody { writer in
            try await writer.write(ByteBuffer(string: "retry: 2000\n\n"))
            for await tick in ticks {
                switch tick {
                case .heartbeat: try await writer.write(ByteBuffer(string: ": keep-alive\n\n"))
                case .changed: try await writer.write(ByteBuffer(string: "event: changed\ndata: {}\n\n"))
                }
            }
            try await writer.finish(nil)
        }
        return Response(
            status: .ok,
            headers: [.contentType: "text/event-stream", .cacheControl: "no-cache", .init("X-Accel-Buffering")!: "no"],
            body: body)
    }
}
