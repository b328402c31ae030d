import FletcherDomain
import FletcherJSON
import FletcherTestSupport
import Foundation
import HTTPTypes
import HummingbirdTesting
import Testing

/// Bad input gets a 400 problem+json naming what is wrong — never a 500 (the generated server's
/// defaults would answer 500 for an undecodable body and accept any string as a UUID).
@Suite("Malformed requests")
struct MalformedRequestTests {
    @Test(arguments: TestEngine.available)
    func undecodableBodiesAre400NamingTheField(engine: TestEngine) async throws {
        let api = try await TestAPI(engine: engine)
        try await api.test { client in
            let token = try await client.token()
            let id = UUID().uuidString.lowercased()
            try await client.send(.post, "/api/plan", token: token, raw: "{\"dataset\": ").expectProblem(.badRequest)
            try await client.send(.post, "/api/plan", token: token, raw: "").expectProblem(.badRequest)
            try await client.send(.post, "/api/plan", token: token, raw: "[1, 2]").expectProblem(.badRequest)
            let missing = try await client.send(.post, "/api/plan", token: token, json: ["dataset": ["id": id], "dependencies": [] as [Any]])
            #expect(missing.expectProblem(.badRequest).contains("data_products"))
            let wrongType = try await client.send(
                .post, "/api/plan", token: token,
                json: ["dataset": ["id": id], "data_products": [["id": id, "compute": "cams", "name": "n", "version": "v", "eager": "yes"]], "dependencies": [] as [Any]])
            #expect(wrongType.expectProblem(.badRequest).contains("eager"))
            let badCompute = try await client.send(
                .post, "/api/plan", token: token,
                json: ["dataset": ["id": id], "data_products": [["id": id, "compute": "lambda", "name": "n", "version": "v", "eager": true]], "dependencies": [] as [Any]])
            #expect(badCompute.expectProblem(.badRequest).contains("compute"))
            let badUUID = try await client.send(
                .post, "/api/plan", token: token, json: ["dataset": ["id": "not-a-uuid"], "data_products": [] as [Any], "dependencies": [] as [Any]])
            #expect(badUUID.expectProblem(.badRequest).contains("not-a-uuid"))
            let nul = try await client.send(
                .post, "/api/plan", token: token,
                json: ["dataset": ["id": id, "extra": ["k": "a\u{0}b"]], "data_products": [] as [Any], "dependencies": [] as [Any]])
            #expect(nul.expectProblem(.badRequest).contains("dataset.extra"))
            // A body the fast reader declines (a repeated member name) is read by the generated decoder.
            let repeated = try await client.send(
                .post, "/api/plan", token: token,
                raw: #"{"dataset":{"id":"\#(id)"},"data_products":[{"id":"\#(id)","compute":"cams","name":"n","name":"n","version":"v","eager":false}],"dependencies":[]}"#)
            #expect(repeated.status == .ok, "\(repeated.text)")
            try await client.send(.put, "/api/data_product/\(id)/update", token: token, json: [["id": id, "state": "bogus"]]).expectProblem(.badRequest)
            try await client.send(.put, "/api/data_product/\(id)/update", token: token, json: ["id": id]).expectProblem(.badRequest)
            try await client.send(.put, "/api/data_product/\(id)/clear", token: token, json: ["nope"]).expectProblem(.badRequest)
            try await client.send(.delete, "/api/data_product/\(id)", token: token, json: [42]).expectProblem(.badRequest)
        }
    }

    /// A body too big to hold whole (over 1 MB) is read as it arrives: one that is not a plan
    /// submission is a 400 saying which row and byte, and nothing is written.
    @Test(arguments: TestEngine.available)
    func bigUnreadableSubmissionsAre400SayingWhere(engine: TestEngine) async throws {
        let api = try await TestAPI(engine: engine)
        let datasetId = UUID()
        let products = (0..<12_000).map { index in
            #"{"id":"\#(UUID().uuidString.lowercased())","compute":"\#(index == 11_000 ? "cloud" : "cams")","name":"p","version":"1","eager":true}"#
        }
        let body = #"{"dataset":{"id":"\#(datasetId.lowercased)"},"data_products":[\#(products.joined(separator: ","))],"dependencies":[]}"#
        // In process and over a socket.
        for mode in [TestingSetup.router, .live] {
            try await api.test(mode) { client in
                let token = try await client.token()
                let detail = try await client.send(.post, "/api/plan", token: token, raw: body).expectProblem(.badRequest)
                #expect(detail.contains("data_products[11000]") && detail.contains("'compute' must be one of cams, dbxaas"), "\(detail)")
                #expect(try await client.send(.get, "/api/plan/\(datasetId.lowercased)").status == .notFound)
            }
        }
    }

    @Test(arguments: TestEngine.available)
    func unknownFieldsAreIgnored(engine: TestEngine) async throws {
        let api = try await TestAPI(engine: engine)
        try await api.test { client in
            let token = try await client.token()
            let id = UUID().uuidString.lowercased()
            let response = try await client.send(
                .post, "/api/plan", token: token,
                json: ["dataset": ["id": id, "color": "red"], "data_products": [] as [Any], "dependencies": [] as [Any], "more": 1])
            #expect(response.status == .ok, "\(response.text)")
        }
    }

    @Test(arguments: TestEngine.available)
    func malformedUUIDsInPathsAre400(engine: TestEngine) async throws {
        let api = try await TestAPI(engine: engine)
        try await api.test { client in
            let token = try await client.token()
            let id = UUID().uuidString.lowercased()
            #expect(try await client.send(.get, "/api/plan/not-a-uuid").expectProblem(.badRequest).contains("not-a-uuid"))
            try await client.send(.get, "/api/plan/\(id)x").expectProblem(.badRequest)
            try await client.send(.get, "/api/data_product/\(id)/123").expectProblem(.badRequest)
            try await client.send(.get, "/api/data_product/zzz/\(id)").expectProblem(.badRequest)
            try await client.send(.put, "/api/plan/zzz/pause", token: token).expectProblem(.badRequest)
            try await client.send(.put, "/api/data_product/zzz/update", token: token, json: [] as [Any]).expectProblem(.badRequest)
            try await client.send(.delete, "/api/data_product/zzz", token: token, json: [] as [Any]).expectProblem(.badRequest)
        }
    }

    @Test(arguments: TestEngine.available)
    func anyAcceptHeaderGetsTheDocumentedContentType(engine: TestEngine) async throws {
        let api = try await TestAPI(engine: engine)
        try await api.test { client in
            let response = try await client.client.execute(
                uri: "/api/plan/search?search_by=&page=0", method: .get, headers: [.accept: "text/html"])
            #expect(response.status == .ok)
            #expect(response.headers[.contentType]?.hasPrefix("application/json") == true)
        }
    }

    @Test(arguments: TestEngine.available)
    func unknownRoutesAndMethodsAreProblems(engine: TestEngine) async throws {
        let api = try await TestAPI(engine: engine)
        try await api.test { client in
            try await client.send(.get, "/api/nothing").expectProblem(.notFound)
            let wrongMethod = try await client.send(.patch, "/api/plan")
            #expect(wrongMethod.status.code >= 400 && wrongMethod.status.code < 500)
            #expect(wrongMethod.headers[.contentType] == "application/problem+json")
        }
    }
}
