import FletcherAPI
public import FletcherDomain
public import FletcherStore
import Foundation
public import Hummingbird
import HTTPTypes
import NIOCore

/// The operations of `openapi.yaml` that read or answer with a whole plan, served as routes of
/// their own: they read submissions with `PlanSubmissionReader` as the body arrives and write
/// plans with `PlanJSON`, because the generated types and Foundation's JSON coders were the
/// server's main cost for big plans (figures in docs/PERFORMANCE.md). Every other operation goes
/// through the generated handlers (`APIRoutes.swift`); the generator's configuration leaves these
/// out of them.
///
/// Each route answers as the document says: 200 with the plan as `application/json`, and every
/// refusal as problem+json (thrown, and written by `ProblemResponseMiddleware`). A mutation checks
/// the caller's token and role before it reads the body, so a caller without rights learns that
/// (401/403) rather than what is wrong with its request.
public struct PlanRoutes: Sendable {
    /// One operation served here, as `openapi.yaml` names it.
    public struct Operation: Sendable, Hashable {
        public var id: String
        public var method: HTTPRequest.Method
        /// The path as the document spells it, `{name}` for a parameter.
        public var path: String
        /// The role the caller needs; nil for a read, which needs no authentication.
        public var role: Role?
    }

    public static let submitPlan = Operation(id: "submitPlan", method: .post, path: "/api/plan", role: .publish)
    public static let getPlan = Operation(id: "getPlan", method: .get, path: "/api/plan/{dataset_id}", role: nil)
    public static let pausePlan = Operation(id: "pausePlan", method: .put, path: "/api/plan/{dataset_id}/pause", role: .pause)
    public static let unpausePlan = Operation(
        id: "unpausePlan", method: .put, path: "/api/plan/{dataset_id}/unpause", role: .pause)
    public static let updateDataProducts = Operation(
        id: "updateDataProducts", method: .put, path: "/api/data_product/{dataset_id}/update", role: .update)
    public static let clearDataProducts = Operation(
        id: "clearDataProducts", method: .put, path: "/api/data_product/{dataset_id}/clear", role: .update)
    public static let disableDataProducts = Operation(
        id: "disableDataProducts", method: .delete, path: "/api/data_product/{dataset_id}", role: .disable)

    /// Every operation served here.
    public static let operations = [
        submitPlan, getPlan, pausePlan, unpausePlan, updateDataProducts, clearDataProducts, disableDataProducts,
    ]

    let store: any Store
    let authenticator: Authenticator
    let transitions: TransitionMetrics
    let events: EventMetrics

    public init(
        store: any Store, authenticator: Authenticator, transitions: TransitionMetrics = TransitionMetrics(),
        events: EventMetrics = EventMetrics()
    ) {
        self.store = store
        self.authenticator = authenticator
        self.transitions = transitions
        self.events = events
    }

    // MARK: The operations

    func submitPlan(_ request: Request, _ parameters: Parameters) async throws -> Response {
        let caller = try await authorize(request, Self.submitPlan)
        try Self.requireJSON(request)
        let submission = try await Self.readSubmission(
            request.body, length: request.headers[.contentLength].flatMap { Int($0) },
            makeRoom: { [cache = store.planCache] in cache.makeRoom(forProducts: $0) })
        let datasetId = submission.datasetId
        // Handed over: the store lets go of it once the plan is made from it.
        return try await mutate(.submit(consume submission), datasetId: datasetId, by: caller)
    }

    func getPlan(_ request: Request, _ parameters: Parameters) async throws -> Response {
        let id = try Self.datasetId(parameters)
        guard let plan = try await store.plan(id) else { throw PlanError.datasetNotFound(id) }
        return Self.response(plan, fragments: store.planCache.fragments(of: plan))
    }

    func pausePlan(_ request: Request, _ parameters: Parameters) async throws -> Response {
        let caller = try await authorize(request, Self.pausePlan)
        return try await mutate(.pause, datasetId: try Self.datasetId(parameters), by: caller)
    }

    func unpausePlan(_ request: Request, _ parameters: Parameters) async throws -> Response {
        let caller = try await authorize(request, Self.unpausePlan)
        return try await mutate(.unpause, datasetId: try Self.datasetId(parameters), by: caller)
    }

    func updateDataProducts(_ request: Request, _ parameters: Parameters) async throws -> Response {
        let caller = try await authorize(request, Self.updateDataProducts)
        let datasetId = try Self.datasetId(parameters)
        let wire = try await Self.decode([Components.Schemas.StateUpdate].self, from: request)
        let updates = try wire.enumerated().map { try StateUpdate($1, offset: $0) }
        return try await mutate(.update(updates), datasetId: datasetId, by: caller)
    }

    func clearDataProducts(_ request: Request, _ parameters: Parameters) async throws -> Response {
        let caller = try await authorize(request, Self.clearDataProducts)
        let datasetId = try Self.datasetId(parameters)
        let ids = try await Self.decode([WireUUID].self, from: request)
        return try await mutate(.clear(ids.map(\.uuid)), datasetId: datasetId, by: caller)
    }

    func disableDataProducts(_ request: Request, _ parameters: Parameters) async throws -> Response {
        let caller = try await authorize(request, Self.disableDataProducts)
        let datasetId = try Self.datasetId(parameters)
        let ids = try await Self.decode([WireUUID].self, from: request)
        return try await mutate(.disable(ids.map(\.uuid)), datasetId: datasetId, by: caller)
    }

    // MARK: Steps they share

    /// The caller of a mutation, when its token is valid and its service holds the operation's role.
    func authorize(_ request: Request, _ operation: Operation) async throws -> Caller {
        let caller = try await authenticator.caller(authorization: request.headers[.authorization])
        if let role = operation.role, !caller.roles.contains(role) {
            throw Problem.forbidden("Service '\(caller.service)' lacks the '\(role.rawValue)' role")
        }
        return caller
    }

    /// Applies a mutation as the caller and answers with the whole plan.
    private func mutate(_ mutation: consuming PlanMutation, datasetId: UUID, by caller: Caller) async throws -> Response {
        let change = try await store.apply(consume mutation, to: datasetId, by: caller.service)
        transitions.record(change.transitions)
        events.record(change.events)
        return Self.response(change.plan, fragments: store.planCache.fragments(of: change.plan))
    }

    /// The plan's JSON as a 200 answer: whole, with its length, or — past `PlanJSON.streamedSize` —
    /// written piece by piece as the connection takes it. The rows' JSON kept in the plan cache
    /// (`fragments`) is reused, and filled with the rows written anew.
    static func response(_ plan: Plan, fragments: PlanFragments?) -> Response {
        let headers: HTTPFields = [.contentType: "application/json; charset=utf-8"]
        guard PlanJSON.estimatedSize(of: plan) > PlanJSON.streamedSize else {
            return Response(status: .ok, headers: headers, body: .init(byteBuffer: ByteBuffer(bytes: PlanJSON.encode(plan, fragments: fragments))))
        }
        let pieces = PlanJSON.Pieces(plan, fragments: fragments).map { ByteBuffer(bytes: $0) }
        return Response(status: .ok, headers: headers, body: .init(asyncSequence: pieces))
    }

    /// The `dataset_id` path parameter.
    static func datasetId(_ parameters: Parameters) throws -> UUID {
        let text = parameters.get("dataset_id") ?? ""
        guard let id = UUID(uuidString: text) else {
            throw Problem.badRequest("Invalid request: dataset_id '\(text)' is not a UUID")
        }
        return id
    }

    /// Refuses a body declared as anything but JSON (none declared is taken as JSON, as the
    /// generated handlers do).
    static func requireJSON(_ request: Request) throws {
        guard let declared = request.headers[.contentType] else { return }
        let mediaType = declared.split(separator: ";", maxSplits: 1).first ?? ""
        guard mediaType.trimmingCharacters(in: .whitespaces).lowercased() == "application/json" else {
            throw Problem.badRequest("Invalid request: the body must be application/json, not '\(declared)'")
        }
    }

    /// A small JSON body (a list of updates or ids) decoded into the generated type the document
    /// describes; a body that is not one gets a 400 naming the field at fault.
    static func decode<Body: Decodable>(_ type: Body.Type, from request: Request) async throws -> Body {
        try requireJSON(request)
        // The body's size is bounded where it streams in (`RequestLimitsMiddleware`).
        let bytes = try await request.body.collect(upTo: .max)
        guard bytes.readableBytes > 0 else { throw Problem.badRequest("Expected a JSON body") }
        return try JSONDecoder().decode(Body.self, from: Data(bytes.readableBytesView))
    }

    /// Reads a submission as its body arrives (`PlanSubmissionReader`). A body it declines goes, up
    /// to `keptBytes`, to the generated type's decoder, which answers with its own words (and takes
    /// the little it takes beyond the reader, such as a trailing comma inside a row); a bigger one
    /// is not held, and gets the reader's reason once it has been read to its end, so the answer
    /// never races the client's upload.
    /// `makeRoom` is told the submission's size on its way in, in data products: a big one's
    /// memory comes out of what the plan cache holds.
    static func readSubmission(
        _ body: RequestBody, length: Int?, makeRoom: (_ products: Int) -> Void
    ) async throws -> PlanSubmission {
        if let length { makeRoom(length / PlanCache.bytesPerProduct) }
        var reader = PlanSubmissionReader(expectedBytes: length)
        var kept: [UInt8]? = []
        var declined: PlanSubmissionReader.Declined?
        var received = 0
        for try await chunk in body {
            received += chunk.readableBytes
            if let held = kept, held.count + chunk.readableBytes > Self.keptBytes {
                kept = nil
                if length == nil { makeRoom(received / PlanCache.bytesPerProduct) }
            }
            kept?.append(contentsOf: chunk.readableBytesView)
            guard declined == nil else { continue }
            let outcome = chunk.withUnsafeReadableBytes { bytes in
                Result { () throws(PlanSubmissionReader.Declined) in try reader.read(bytes) }
            }
            if case .failure(let error) = outcome { declined = error }
        }
        if received == 0 { throw Problem.badRequest("Expected a JSON body") }
        let refusal: PlanSubmissionReader.Declined
        if let declined {
            refusal = declined
        } else {
            do { return try reader.finish() } catch { refusal = error }
        }
        if let kept {
            return try PlanSubmission(jsonDecoder().decode(Components.Schemas.PlanSubmission.self, from: Data(kept)))
        }
        throw Problem.badRequest("The plan submission cannot be read: \(refusal.reason)")
    }

    /// A decoder of the generated types that reads times as the generated handlers do (`RFC3339DateTranscoder`).
    static func jsonDecoder() -> JSONDecoder {
        let decoder = JSONDecoder()
        let transcoder = RFC3339DateTranscoder()
        decoder.dateDecodingStrategy = .custom { decoder in
            let text = try decoder.singleValueContainer().decode(String.self)
            guard let date = try? transcoder.decode(text) else {
                throw DecodingError.dataCorrupted(
                    .init(codingPath: decoder.codingPath, debugDescription: "'\(text)' is not an RFC 3339 date-time"))
            }
            return date
        }
        return decoder
    }

    /// A declined body up to this size goes to the generated type's decoder; a bigger one is
    /// refused with the reader's reason, its bytes not held.
    static let keptBytes = 1 << 20
}

extension Router {
    /// Adds `PlanRoutes`' operations at the document's paths.
    public func addPlanRoutes(_ routes: PlanRoutes) {
        let handlers: [(PlanRoutes.Operation, @Sendable (PlanRoutes, Request, Parameters) async throws -> Response)] = [
            (PlanRoutes.submitPlan, { try await $0.submitPlan($1, $2) }),
            (PlanRoutes.getPlan, { try await $0.getPlan($1, $2) }),
            (PlanRoutes.pausePlan, { try await $0.pausePlan($1, $2) }),
            (PlanRoutes.unpausePlan, { try await $0.unpausePlan($1, $2) }),
            (PlanRoutes.updateDataProducts, { try await $0.updateDataProducts($1, $2) }),
            (PlanRoutes.clearDataProducts, { try await $0.clearDataProducts($1, $2) }),
            (PlanRoutes.disableDataProducts, { try await $0.disableDataProducts($1, $2) }),
        ]
        for (operation, handler) in handlers {
            on(RouterPath(operation.path), method: operation.method) { request, context in
                try await handler(routes, request, context.parameters)
            }
        }
    }
}
