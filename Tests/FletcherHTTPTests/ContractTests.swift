import FletcherAPI
import FletcherDomain
import FletcherJSON
import FletcherHTTP
import FletcherStore
import FletcherTestSupport
import Foundation
import HTTPTypes
import Hummingbird
import HummingbirdTesting
import OpenAPIKit
import Testing
import Yams

/// `openapi.yaml` is the single contract: every operation it names is served at its method and
/// path, and the routes written by hand (`PlanRoutes`) take the requests its schemas describe and
/// answer with the statuses, media types and schemas it documents.
@Suite("The OpenAPI document is the contract")
struct ContractTests {
    /// An operation as the document describes it.
    struct Documented: Sendable, CustomStringConvertible {
        var id: String
        var method: HTTPRequest.Method
        var path: String
        var secured: Bool
        /// Media type of each documented status's answer.
        var answers: [Int: String]

        var description: String { "\(id) (\(method) \(path))" }
    }

    static let documented: [Documented] = {
        let document = try! YAMLDecoder().decode(OpenAPI.Document.self, from: OpenAPIDocument.yaml).locallyDereferenced()
        var operations: [Documented] = []
        for (path, item) in document.paths {
            for endpoint in item.endpoints {
                var answers: [Int: String] = [:]
                for (status, response) in endpoint.operation.responses {
                    guard case .status(code: let code) = status.value else { continue }
                    answers[code] = response.content.keys.first?.rawValue ?? ""
                }
                operations.append(
                    Documented(
                        id: endpoint.operation.underlyingOperation.operationId ?? "", method: .init(endpoint.method.rawValue)!,
                        path: path.rawValue, secured: !(endpoint.operation.security ?? []).isEmpty, answers: answers))
            }
        }
        return operations
    }()

    static func documented(_ operation: PlanRoutes.Operation) throws -> Documented {
        try #require(documented.first { $0.id == operation.id }, "\(operation.id) is not in openapi.yaml")
    }

    /// The path with each parameter filled with a fresh UUID.
    static func concrete(_ path: String) -> String {
        path.split(separator: "/", omittingEmptySubsequences: false).map {
            $0.hasPrefix("{") ? UUID().uuidString.lowercased() : String($0)
        }.joined(separator: "/")
    }

    @Test func theDocumentNamesEveryOperationOnce() {
        #expect(Self.documented.count >= 16)
        #expect(Set(Self.documented.map(\.id)).count == Self.documented.count)
    }

    /// Each operation reaches a handler: an unknown path or a method the router does not serve has
    /// the router's own answer ("No such resource", 405), which no operation gives for these requests.
    @Test(arguments: documented)
    func everyOperationIsServed(_ operation: Documented) async throws {
        let api = try await TestAPI(engine: .sqlite)
        try await api.test { client in
            let response = try await client.send(operation.method, Self.concrete(operation.path))
            #expect(response.status != .methodNotAllowed, "\(operation): \(response.text)")
            #expect(!response.text.contains("No such resource"), "\(operation): \(response.text)")
        }
    }

    /// The hand-written routes are the document's operations, under their ids, methods and paths,
    /// and ask for a token exactly where the document does.
    @Test(arguments: PlanRoutes.operations)
    func planRoutesAreTheDocumentsOperations(_ operation: PlanRoutes.Operation) throws {
        let documented = try Self.documented(operation)
        #expect(documented.method == operation.method)
        #expect(documented.path == operation.path)
        #expect(documented.secured == (operation.role != nil))
    }

    /// The bulk routes are the document's operations, and each asks for a token and a role.
    @Test(arguments: BulkRoutes.operations)
    func bulkRoutesAreTheDocumentsOperations(_ operation: PlanRoutes.Operation) throws {
        let documented = try Self.documented(operation)
        #expect(documented.method == operation.method)
        #expect(documented.path == operation.path)
        #expect(documented.secured && operation.role != nil)
    }

    /// The event feed's routes are the document's operations, and each asks for a token.
    /// The product list's route is the document's operation, a read without a token.
    @Test(arguments: ProductListRoutes.operations)
    func productListRoutesAreTheDocumentsOperations(_ operation: PlanRoutes.Operation) throws {
        let documented = try Self.documented(operation)
        #expect(documented.method == operation.method)
        #expect(documented.path == operation.path)
        #expect(!documented.secured && operation.role == nil)
    }

    @Test(arguments: EventRoutes.operations)
    func eventRoutesAreTheDocumentsOperations(_ operation: PlanRoutes.Operation) throws {
        let documented = try Self.documented(operation)
        #expect(documented.method == operation.method)
        #expect(documented.path == operation.path)
        #expect(documented.secured)
    }

    // MARK: Every status of every hand-written route

    /// A request to send and the status it must get.
    struct Case: Sendable {
        var operation: PlanRoutes.Operation
        var status: Int
        var token: String?
        var datasetId: String
        var body: String?
        var contentType = "application/json"
    }

    /// Sends each case to a router whose limits let 413 and 503 happen, and checks the answer
    /// against what the document says of that operation and status; returns the statuses seen.
    static func check(_ cases: [Case], _ client: APIClient) async throws -> Set<String> {
        var seen: Set<String> = []
        for item in cases {
            var headers: HTTPFields = [.contentType: item.contentType]
            if let token = item.token { headers[.authorization] = "Bearer \(token)" }
            let path = item.operation.path.replacingOccurrences(of: "{dataset_id}", with: item.datasetId)
            let response = try await client.send(item.operation.method, path, raw: item.body, headers: headers)
            let documented = try documented(item.operation)
            let label = "\(item.operation.id) \(item.status): \(response.text.prefix(300))"
            #expect(response.status.code == item.status, "\(label)")
            let mediaType = try #require(documented.answers[response.status.code], "undocumented status: \(label)")
            #expect(response.headers[.contentType]?.hasPrefix(mediaType) == true, "\(label)")
            let bytes = Data(response.text.utf8)
            if response.status == .ok {
                let plan = try decoder.decode(Components.Schemas.Plan.self, from: bytes)
                #expect(!plan.dataProducts.isEmpty, "\(label)")
            } else {
                let problem = try decoder.decode(Components.Schemas.Problem.self, from: bytes)
                #expect(problem.status == Int(response.status.code), "\(label)")
            }
            seen.insert("\(item.operation.id) \(response.status.code)")
        }
        return seen
    }

    @Test func everyDocumentedStatusOfThePlanRoutesIsAnsweredAsDocumented() async throws {
        let store = try await TestStores.make(.sqlite)
        let names = Names()
        let fixture = PlanFixture(names: names).products("a", "b", "c").chain("a", "b")
        let dataset = fixture.datasetId.lowercased
        let missing = UUID().uuidString.lowercased()
        let a = names["a"].lowercased, b = names["b"].lowercased
        // The request bodies are encoded from the generated types: what the schemas describe.
        let submission = try Self.json(Self.wireSubmission(fixture))
        let updates = try Self.json([
            Components.Schemas.StateUpdate(id: WireUUID(names["a"]), state: .success, runId: nil, link: nil, passback: nil)
        ])
        // A report on a try that is not the queued product's current one.
        let stale = try Self.json([
            Components.Schemas.StateUpdate(id: WireUUID(names["a"]), state: .running, triggerId: Nullable(WireUUID(UUID())))
        ])
        let clearIds = try Self.json([WireUUID(names["b"])]), disableIds = try Self.json([WireUUID(names["c"])])
        let cyclic = submission.replacingOccurrences(of: #""dependencies":["#, with: #""dependencies":[{"parent_id":"\#(b)","child_id":"\#(a)"},"#)
        let dangling = submission.replacingOccurrences(
            of: #""dependencies":["#, with: #""dependencies":[{"parent_id":"\#(missing)","child_id":"\#(a)"},"#)
        let big = String(repeating: " ", count: 4_096) + submission

        let api = TestAPI(store: store, router: try await TestAPI.router(store: store, maxBodyBytes: 4_096))
        let busy = TestAPI(store: store, router: try await TestAPI.router(store: store, maxConcurrentRequests: 0))
        var seen = try await api.test { client in
            let publisher = try await client.token("publisher")
            let reader = try await client.token("reader")
            let submit = PlanRoutes.submitPlan, get = PlanRoutes.getPlan, pause = PlanRoutes.pausePlan
            let unpause = PlanRoutes.unpausePlan, update = PlanRoutes.updateDataProducts
            let clear = PlanRoutes.clearDataProducts, disable = PlanRoutes.disableDataProducts
            var cases = [
                Case(operation: submit, status: 401, token: nil, datasetId: "", body: submission),
                Case(operation: submit, status: 403, token: reader, datasetId: "", body: submission),
                Case(operation: submit, status: 400, token: publisher, datasetId: "", body: #"{"dataset":{}}"#),
                Case(operation: submit, status: 400, token: publisher, datasetId: "", body: submission, contentType: "text/plain"),
                Case(operation: submit, status: 413, token: publisher, datasetId: "", body: big),
                Case(operation: submit, status: 422, token: publisher, datasetId: "", body: cyclic),
                Case(operation: submit, status: 404, token: publisher, datasetId: "", body: dangling),
                Case(operation: submit, status: 200, token: publisher, datasetId: "", body: submission),
                Case(operation: get, status: 200, token: nil, datasetId: dataset),
                Case(operation: get, status: 400, token: nil, datasetId: "not-a-uuid"),
                Case(operation: get, status: 404, token: nil, datasetId: missing),
            ]
            for operation in [pause, unpause] {
                cases += [
                    Case(operation: operation, status: 401, token: nil, datasetId: dataset),
                    Case(operation: operation, status: 403, token: reader, datasetId: dataset),
                    Case(operation: operation, status: 400, token: publisher, datasetId: "not-a-uuid"),
                    Case(operation: operation, status: 404, token: publisher, datasetId: missing),
                ]
            }
            cases += [
                Case(operation: unpause, status: 400, token: publisher, datasetId: dataset),  // not paused
                Case(operation: pause, status: 200, token: publisher, datasetId: dataset),
                Case(operation: unpause, status: 200, token: publisher, datasetId: dataset),
            ]
            for (operation, body) in [(update, updates), (clear, clearIds), (disable, disableIds)] {
                cases += [
                    Case(operation: operation, status: 401, token: nil, datasetId: dataset, body: body),
                    Case(operation: operation, status: 403, token: reader, datasetId: dataset, body: body),
                    Case(operation: operation, status: 400, token: publisher, datasetId: dataset, body: #"[{"id":7}]"#),
                    Case(operation: operation, status: 400, token: publisher, datasetId: "not-a-uuid", body: body),
                    Case(operation: operation, status: 404, token: publisher, datasetId: missing, body: body),
                    Case(operation: operation, status: 413, token: publisher, datasetId: dataset, body: String(repeating: " ", count: 4_096) + body),
                    Case(operation: operation, status: 200, token: publisher, datasetId: dataset, body: body),
                ]
                if operation == update {
                    cases.insert(Case(operation: update, status: 409, token: publisher, datasetId: dataset, body: stale), at: cases.count - 1)
                }
            }
            return try await Self.check(cases, client)
        }
        seen.formUnion(
            try await busy.test { client in
                let cases = PlanRoutes.operations.map { Case(operation: $0, status: 503, token: nil, datasetId: dataset, body: "[]") }
                return try await Self.check(cases, client)
            })
        // Every status the document gives these operations was answered.
        for operation in PlanRoutes.operations {
            for status in try Self.documented(operation).answers.keys {
                #expect(seen.contains("\(operation.id) \(status)"), "\(operation.id) never answered \(status)")
            }
        }
    }

    /// Decodes answers as the generated client would (dates in RFC 3339).
    static var decoder: JSONDecoder {
        let decoder = JSONDecoder()
        decoder.dateDecodingStrategy = .custom { decoder in
            try RFC3339DateTranscoder().decode(try decoder.singleValueContainer().decode(String.self))
        }
        return decoder
    }

    static func json(_ value: some Encodable) throws -> String {
        String(decoding: try JSONEncoder().encode(value), as: UTF8.self)
    }

    static func wireSubmission(_ fixture: PlanFixture) -> Components.Schemas.PlanSubmission {
        Components.Schemas.PlanSubmission(
            dataset: .init(id: WireUUID(fixture.datasetId), extra: nil),
            dataProducts: fixture.products.enumerated().map { offset, product in
                // The first with limits of its own.
                .init(
                    id: WireUUID(product.id), compute: .init(rawValue: product.compute.rawValue)!, name: product.name,
                    version: product.version, eager: product.eager, passthrough: nil, extra: nil,
                    retries: offset == 0 ? 3 : nil, maxQueuedS: offset == 0 ? 60 : nil, maxRunningS: offset == 0 ? 0.5 : nil)
            },
            dependencies: fixture.edges.map { .init(parentId: WireUUID($0.parentId), childId: WireUUID($0.childId), extra: nil) })
    }
}
