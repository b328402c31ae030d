public import FletcherStore
import FletcherDomain
import Foundation
public import Hummingbird
import Logging

/// Serves the web UI from a store: pages, fragments, assets and live updates.
public struct WebUI: Sendable {
    let store: any Store
    let renderer: GraphvizRenderer
    let assets: Assets
    let sessions: WebSessions
    let transitions: TransitionMetrics
    let events: EventMetrics

    public init(
        store: any Store, sessions: WebSessions, renderer: GraphvizRenderer = GraphvizRenderer(),
        transitions: TransitionMetrics = TransitionMetrics(), events: EventMetrics = EventMetrics()
    ) {
        self.store = store
        self.renderer = renderer
        self.assets = Assets()
        self.sessions = sessions
        self.transitions = transitions
        self.events = events
    }

    // MARK: Search

    func searchPage(_ request: Request) async throws -> Response {
        let form = FormQuery(request)
        let text = form["search_by"] ?? ""
        let page = min(form.count("page") ?? 0, SearchQuery.lastPage)
        // The home page (no search) opens with what needs attention.
        async let attention =
            text.isEmpty && page == 0
            ? AttentionReport.read(store, filter: .init(), scope: .counts) : nil
        let result = try await store.search(SearchQuery(text: text, page: page))
        let summaries = try await store.planSummaries(result.rows.map(\.datasetId))
        let visitor = await sessions.visitor(request)
        return html(
            SearchView.page(
                text: text, page: page, result: result, summaries: summaries, attention: try await attention, visitor: visitor,
                assets: assets))
    }

    func searchFragment(_ request: Request) async throws -> Response {
        let form = FormQuery(request)
        guard let text = form["search_by"] else {
            return html("<tr class=\"error\"><td colspan=\"4\">search_by is missing</td></tr>", status: .badRequest)
        }
        guard let page = form.count("page") else {
            return html("<tr class=\"error\"><td colspan=\"4\">page must be a non-negative integer</td></tr>", status: .badRequest)
        }
        guard page <= SearchQuery.lastPage else { return html("") }
        let result = try await store.search(SearchQuery(text: text, page: page))
        let summaries = try await store.planSummaries(result.rows.map(\.datasetId))
        return html(SearchView.rows(text: text, page: page, result: result, summaries: summaries))
    }

    // MARK: Plan

    func planPage(_ request: Request, context: some RequestContext) async throws -> Response {
        let visitor = await sessions.visitor(request)
        guard let id = datasetId(context),
            let (plan, events) = try await store.planWithRecentStateChanges(id, limit: TimelineView.eventLimit)
        else { return notFound("No plan has the dataset id in this address.", visitor: visitor) }
        let form = FormQuery(request)
        var filter = PlanView.Filter()
        filter.state = form["state"].flatMap(DataProductState.init(rawValue:))
        filter.name = form["name"]?.trimmingCharacters(in: .whitespaces) ?? ""
        filter.page = form.count("page") ?? 0
        // A big plan held in the cache comes with its rules' graph and its rows' JSON.
        let graph = store.planCache.graph(of: plan) ?? PlanGraph(plan)
        let focus = form["focus"].flatMap { Self.resolve($0, in: plan) }
        let drawing = PlanDrawing(plan: plan, graph: graph, focus: focus)
        let svg = drawing.paint(Self.inline(try await renderer.svg(for: drawing.dot)))
        let now = Date()
        let timeline = TimelineView.section(plan: plan, events: events, now: now)
        return html(
            PlanView.page(
                plan: plan, fragments: store.planCache.fragments(of: plan), drawing: drawing, svg: svg, filter: filter,
                timeline: timeline, now: now, visitor: visitor, assets: assets))
    }

    func productPage(_ request: Request, context: some RequestContext) async throws -> Response {
        let visitor = await sessions.visitor(request)
        guard let plan = try await plan(context),
            let productId = context.parameters.get("product_id").flatMap(UUID.init(uuidString:))
        else { return notFound("No plan has the dataset id in this address.", visitor: visitor) }
        let graph = store.planCache.graph(of: plan) ?? PlanGraph(plan)
        guard let position = graph.index[productId] else {
            return notFound("This plan has no data product with the id in this address.", visitor: visitor)
        }
        let history = try await store.history(
            datasetId: plan.dataset.id, dataProductId: productId, before: nil, limit: ProductView.historyLength)
        let tries = try await tries(of: plan.dataProducts[position], datasetId: plan.dataset.id, history: history)
        if FormQuery(request)["fragment"] != nil {
            return html(
                ProductView.fragment(
                    plan: plan, graph: graph, position: position, history: history, tries: tries, viewer: visitor.viewer))
        }
        return html(
            ProductView.page(
                plan: plan, graph: graph, position: position, history: history, tries: tries, visitor: visitor, assets: assets))
    }

    /// A product's tries, from its triggers and its history: the page's history read, and up to
    /// `ProductTries.extraReads` older pages while they hold the tries shown (at most 2 + 3 reads).
    func tries(of product: DataProduct, datasetId: UUID, history: HistoryPage?) async throws -> ProductView.Tries {
        let triggers = try await store.triggers(datasetId: datasetId, dataProductId: product.id)
        let oldest = ProductTries.oldestShown(product: product, triggers: triggers)
        let events = try await ProductTries.events(first: history, reachingBackTo: oldest) { before in
            try await store.history(datasetId: datasetId, dataProductId: product.id, before: before, limit: ProductTries.pageSize)
        }
        return ProductView.Tries(
            list: ProductTries.build(product: product, triggers: triggers, events: events, policy: store.policy),
            policy: store.policy, now: Date())
    }

    /// A focus request: a data product id, or the first whose name contains the text.
    static func resolve(_ text: String, in plan: Plan) -> UUID? {
        let text = text.trimmingCharacters(in: .whitespaces)
        if let id = UUID(uuidString: text) { return id }
        guard !text.isEmpty else { return nil }
        return plan.dataProducts.first { $0.state != .disabled && $0.name.localizedCaseInsensitiveContains(text) }?.id
    }

    /// Graphviz's SVG without its XML prolog, to sit inline. A drawing that fits the page keeps its
    /// natural size; a larger one loses its fixed size and is scaled to fit (zoom shows the detail).
    static func inline(_ svg: String) -> String {
        let bytes = Array(svg.utf8)
        guard let start = bytes.firstRange(of: "<svg".utf8)?.lowerBound else { return svg }
        let tagEnd = bytes[start...].firstIndex(of: UInt8(ascii: ">")) ?? bytes.endIndex
        // The root's `width="…pt" height="…pt"`, which Graphviz always writes.
        func number(after name: String, from index: Int) -> (value: Double, end: Int)? {
            guard let attribute = bytes[index..<tagEnd].firstRange(of: (name + "=\"").utf8),
                let close = bytes[attribute.upperBound..<tagEnd].firstRange(of: "pt\"".utf8),
                let value = Double(String(decoding: bytes[attribute.upperBound..<close.lowerBound], as: UTF8.self))
            else { return nil }
            return (value, close.upperBound)
        }
        let attributes = #"preserveAspectRatio="xMidYMid meet" role="img" aria-label="Plan graph""#
        guard let width = number(after: "width", from: start), let height = number(after: "height", from: width.end),
            let sizeStart = bytes[start..<tagEnd].firstRange(of: "width=\"".utf8)?.lowerBound
        else { return String(decoding: bytes[start...], as: UTF8.self) }
        let replacement: String
        if width.value <= maxNaturalWidth, height.value <= maxNaturalHeight {
            // A little larger than Graphviz's points, for legibility, as long as it still fits.
            let scale = min(1.5, maxNaturalWidth / width.value, maxNaturalHeight / height.value)
            // Only a width: the height follows from the view box, also when the width shrinks to fit a phone.
            replacement = "width=\"\(Int(width.value * scale))\" " + attributes
        } else {
            replacement = attributes
        }
        var body = Array(bytes[start..<sizeStart])
        body.reserveCapacity(bytes.count - start + replacement.utf8.count)
        body.append(contentsOf: replacement.utf8)
        body.append(contentsOf: bytes[height.end...])
        return String(decoding: body, as: UTF8.self)
    }

    /// Drawings up to this size (points) are shown as they are.
    static let maxNaturalWidth = 1_300.0
    static let maxNaturalHeight = 600.0

    private func plan(_ context: some RequestContext) async throws -> Plan? {
        guard let id = datasetId(context) else { return nil }
        return try await store.plan(id)
    }

    /// The dataset id in the address (`/plan/{dataset_id}…`), if it is one.
    func datasetId(_ context: some RequestContext) -> UUID? {
        context.parameters.get("dataset_id").flatMap(UUID.init(uuidString:))
    }

    // MARK: Responses

    func html(_ page: HTML, status: HTTPResponse.Status = .ok) -> Response {
        Response(
            status: status,
            headers: [
                .contentType: "text/html; charset=utf-8", .cacheControl: "no-cache",
                .init("X-Content-Type-Options")!: "nosniff",
            ],
            body: .init(byteBuffer: ByteBuffer(string: page.text)))
    }

    func notFound(_ message: String, visitor: Visitor) -> Response {
        html(NotFoundView.page(message, visitor: visitor, assets: assets), status: .notFound)
    }

    func asset(_ request: Request, context: some RequestContext) -> Response {
        guard let name = context.parameters.get("name"), let file = assets.files[name] else {
            return Response(status: .notFound)
        }
        let versioned = FormQuery(request)["v"] == file.fingerprint
        let etag = "\"\(file.fingerprint)\""
        var headers: HTTPFields = [
            .contentType: file.contentType, .eTag: etag,
            .cacheControl: versioned ? "public, max-age=31536000, immutable" : "public, max-age=300",
        ]
        if request.headers[.ifNoneMatch] == etag {
            return Response(status: .notModified, headers: headers)
        }
        headers[.contentLength] = String(file.bytes.count)
        return Response(status: .ok, headers: headers, body: .init(byteBuffer: ByteBuffer(bytes: file.bytes)))
    }
}

extension Router {
    /// Adds the web UI's routes.
    public func addWebRoutes(_ ui: WebUI) {
        add(middleware: NotFoundPageMiddleware(assets: ui.assets))
        get("/") { request, _ in try await ui.searchPage(request) }
        get("/component/plan_search") { request, _ in try await ui.searchFragment(request) }
        get("/plan/:dataset_id") { request, context in try await ui.planPage(request, context: context) }
        get("/plan/:dataset_id/product/:product_id") { request, context in try await ui.productPage(request, context: context) }
        get("/plan/:dataset_id/events") { request, context in try await ui.events(request, context: context) }
        get("/assets/:name") { request, context in ui.asset(request, context: context) }
        get("/login") { request, _ in try await ui.signInPage(request) }
        post("/login") { request, _ in try await ui.signIn(request) }
        post("/logout") { request, _ in try await ui.signOut(request) }
        post("/plan/:dataset_id/action") { request, context in try await ui.action(request, context: context) }
        get("/attention") { request, _ in try await ui.attentionPage(request) }
        get("/attention/events") { request, _ in try await ui.attentionEvents(request) }
    }
}

/// Answers a browser that asks for an unknown page with the 404 page, not problem+json (API paths
/// keep their problem+json answers).
struct NotFoundPageMiddleware<Context: RequestContext>: RouterMiddleware {
    let assets: Assets

    func handle(_ request: Request, context: Context, next: (Request, Context) async throws -> Response) async throws -> Response {
        do {
            return try await next(request, context)
        } catch let error as HTTPError where error.status == .notFound {
            guard !request.uri.path.hasPrefix("/api/"), request.headers[.accept]?.contains("text/html") == true else { throw error }
            let page = NotFoundView.page("There is no page at this address.", assets: assets)
            return Response(
                status: .notFound, headers: [.contentType: "text/html; charset=utf-8"],
                body: .init(byteBuffer: ByteBuffer(string: page.text)))
        }
    }
}
