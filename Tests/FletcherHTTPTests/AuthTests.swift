import FletcherApp
import FletcherDomain
import FletcherHTTP
import FletcherTestSupport
import Foundation
import HTTPTypes
import Hummingbird
import HummingbirdTesting
import JWTKit
import Testing

@Suite("Authentication and roles")
struct AuthTests {
    @Test func authenticateIssuesAnHS256TokenWithTheConfiguredRoles() async throws {
        let api = try await TestAPI(engine: .sqlite)
        try await api.test { client in
            let response = try await client.send(.post, "/api/authenticate", json: ["service": "publisher", "key": "publisher-key"])
            #expect(response.status == .ok)
            let token = response.object
            #expect(token["token_type"] as? String == "Bearer")
            #expect(token["issued_by"] as? String == "Fletcher")
            #expect(token["ttl"] as? Int == 3600)
            #expect(token["service"] as? String == "publisher")
            #expect(token["roles"] as? [String] == ["disable", "pause", "publish", "update"])
            let issued = try #require(token["issued"] as? Int)
            #expect(token["expires"] as? Int == issued + 3600)
            #expect(abs(issued - Int(Date().timeIntervalSince1970)) < 60)
            let jwt = try #require(token["access_token"] as? String)
            let parts = jwt.split(separator: ".").map { Self.base64URLDecode(String($0)) }
            let header = try #require(try JSONSerialization.jsonObject(with: parts[0]) as? [String: Any])
            #expect(header["alg"] as? String == "HS256")
            let claims = try #require(try JSONSerialization.jsonObject(with: parts[1]) as? [String: Any])
            #expect(claims["sub"] as? String == "publisher")
            #expect(claims["iss"] as? String == "Fletcher")
            #expect(claims["iat"] as? Int == issued)
            #expect(claims["exp"] as? Int == issued + 3600)
            #expect(claims["roles"] as? [String] == ["disable", "pause", "publish", "update"])
        }
    }

    @Test func unknownServicesAndWrongKeysAre401() async throws {
        let api = try await TestAPI(engine: .sqlite)
        try await api.test { client in
            try await client.send(.post, "/api/authenticate", json: ["service": "publisher", "key": "wrong"]).expectProblem(.unauthorized)
            try await client.send(.post, "/api/authenticate", json: ["service": "nobody", "key": "nobody-key"]).expectProblem(.unauthorized)
            try await client.send(.post, "/api/authenticate", json: ["service": "publisher"]).expectProblem(.badRequest)
        }
    }

    @Test func aTwoYHashIsAccepted() async throws {
        var account = TestServices.account("legacy", roles: [.publish])
        account.hash = "$2y$" + account.hash.dropFirst(4)
        let api = try await TestAPI(engine: .sqlite, accounts: [account])
        try await api.test { client in _ = try await client.token("legacy") }
    }

    @Test func mutationsNeedAValidTokenWithTheRole() async throws {
        let api = try await TestAPI(engine: .sqlite)
        let id = UUID().uuidString.lowercased()
        try await api.test { client in
            let submission: [String: Any] = ["dataset": ["id": id], "data_products": [] as [Any], "dependencies": [] as [Any]]
            let missing = try await client.send(.post, "/api/plan", json: submission)
            missing.expectProblem(.unauthorized)
            #expect(missing.headers[.wwwAuthenticate] == "Bearer")
            // Authentication is checked before the body is read.
            try await client.send(.post, "/api/plan", raw: "{not json").expectProblem(.unauthorized)
            try await client.send(.post, "/api/plan", token: "garbage", json: submission).expectProblem(.unauthorized)
            let forged = try await Self.token(secret: "another-secret-also-long-enough-for-hs256", service: "publisher", expires: Date().addingTimeInterval(600))
            try await client.send(.post, "/api/plan", token: forged, json: submission).expectProblem(.unauthorized)
            let expired = try await Self.token(secret: TestServices.secret, service: "publisher", expires: Date().addingTimeInterval(-10))
            try await client.send(.post, "/api/plan", token: expired, json: submission).expectProblem(.unauthorized)
            let unsigned = Self.unsignedToken(service: "publisher")
            try await client.send(.post, "/api/plan", token: unsigned, json: submission).expectProblem(.unauthorized)
            let valid = try await Self.token(secret: TestServices.secret, service: "publisher", expires: Date().addingTimeInterval(600))
            #expect(try await client.send(.post, "/api/plan", token: valid, json: submission).status == .ok)

            // Roles come from the configuration: the reader's token claims every role but holds none.
            let reader = try await Self.token(secret: TestServices.secret, service: "reader", expires: Date().addingTimeInterval(600))
            let base = "/api/data_product/\(id)"
            try await client.send(.post, "/api/plan", token: reader, json: submission).expectProblem(.forbidden)
            try await client.send(.put, "/api/plan/\(id)/pause", token: reader).expectProblem(.forbidden)
            try await client.send(.put, "/api/plan/\(id)/unpause", token: reader).expectProblem(.forbidden)
            try await client.send(.put, "\(base)/update", token: reader, json: [] as [Any]).expectProblem(.forbidden)
            try await client.send(.put, "\(base)/clear", token: reader, json: [] as [Any]).expectProblem(.forbidden)
            try await client.send(.delete, base, token: reader, json: [] as [Any]).expectProblem(.forbidden)

            let pauser = try await client.token("pauser")
            #expect(try await client.send(.put, "/api/plan/\(id)/pause", token: pauser).status == .ok)
            try await client.send(.put, "\(base)/update", token: pauser, json: [] as [Any]).expectProblem(.forbidden)
            let updater = try await client.token("updater")
            #expect(try await client.send(.put, "\(base)/clear", token: updater, json: [] as [Any]).status == .ok)
            try await client.send(.delete, base, token: updater, json: [] as [Any]).expectProblem(.forbidden)
            // Reads need no token.
            #expect(try await client.send(.get, "/api/plan/\(id)").status == .ok)
        }
    }

    @Test func onlyHS256IsAcceptedEvenWithTheRightSecret() async throws {
        // HS384 and HS512 need a secret at least as long as their digest: 64 bytes serves all three.
        let secret = String(repeating: "s3cret-", count: 10)
        let api = try await TestAPI(store: try await TestStores.make(.sqlite), secret: secret)
        let id = UUID().uuidString.lowercased()
        try await api.test { client in
            let submission: [String: Any] = ["dataset": ["id": id], "data_products": [] as [Any], "dependencies": [] as [Any]]
            let expires = Date().addingTimeInterval(600)
            for digest in [DigestAlgorithm.sha384, .sha512] {
                let token = try await Self.token(secret: secret, service: "publisher", expires: expires, digest: digest)
                let header = try #require(
                    try JSONSerialization.jsonObject(with: Self.base64URLDecode(String(token.split(separator: ".")[0]))) as? [String: Any])
                #expect(header["alg"] as? String == (digest == .sha384 ? "HS384" : "HS512"))
                try await client.send(.post, "/api/plan", token: token, json: submission).expectProblem(.unauthorized)
            }
            let token = try await Self.token(secret: secret, service: "publisher", expires: expires)
            #expect(try await client.send(.post, "/api/plan", token: token, json: submission).status == .ok)
        }
    }

    /// Verified tokens are remembered (not checked again on every request) — but only until they
    /// expire, on the server's clock (moved by hand here).
    @Test func aTokenUsedBeforeStopsWorkingWhenItExpires() async throws {
        let clock = ManualClock()
        let router = try buildRouter(
            store: try await TestStores.make(.sqlite), authenticator: await LoginThrottleTests.authenticator(clock: clock),
            logger: TestAPI.logger)
        let app = Application(router: router, configuration: .init(address: .hostname("127.0.0.1", port: 0)), logger: TestAPI.logger)
        // A JWT's `exp` is in whole seconds, as the clock's start is.
        let expires = clock.now.addingTimeInterval(60)
        let used = try await Self.token(secret: TestServices.secret, service: "publisher", expires: expires)
        let unused = try await Self.token(secret: TestServices.secret, service: "updater", expires: expires)
        try await app.test(.router) { client async throws in
            let client = APIClient(client: client)
            func submit(_ token: String) async throws -> HTTPResponse.Status {
                let id = UUID().uuidString.lowercased()
                let submission: [String: Any] = ["dataset": ["id": id], "data_products": [] as [Any], "dependencies": [] as [Any]]
                return try await client.send(.post, "/api/plan", token: token, json: submission).status
            }
            func clear(_ token: String) async throws -> HTTPResponse.Status {
                try await client.send(.put, "/api/data_product/\(UUID())/clear", token: token, json: [] as [Any]).status
            }
            // Checked, then remembered; still valid half a second before it expires.
            #expect(try await submit(used) == .ok)
            #expect(try await submit(used) == .ok)
            clock.advance(by: 59.5)
            #expect(try await submit(used) == .ok)
            // Refused from the moment it expires: the remembered one and one never checked before.
            clock.advance(by: 0.5)
            #expect(try await submit(used) == .unauthorized)
            #expect(try await clear(unused) == .unauthorized)
        }
    }

    @Test func aRemovedServicesTokensStopWorking() async throws {
        let store = try await TestStores.make(.sqlite)
        let before = try await TestAPI(store: store)
        let token = try await before.test { try await $0.token("updater") }
        let after = try await TestAPI(store: store, accounts: TestServices.accounts.filter { $0.service != "updater" })
        try await after.test { client in
            let detail = try await client.send(.put, "/api/data_product/\(UUID())/clear", token: token, json: [] as [Any])
                .expectProblem(.unauthorized)
            #expect(detail.contains("updater"))
        }
    }

    /// A token as Fletcher would sign it, with any secret, expiry and HMAC digest.
    static func token(
        secret: String, service: String, expires: Date, digest: DigestAlgorithm = .sha256
    ) async throws -> String {
        let keys = JWTKeyCollection()
        await keys.add(hmac: HMACKey(from: secret), digestAlgorithm: digest)
        return try await keys.sign(
            Claims(
                sub: .init(value: service), iat: .init(value: Date()), exp: .init(value: expires), iss: .init(value: "Fletcher"),
                roles: Role.allCases.map(\.rawValue)))
    }

    /// A token with `"alg": "none"` and no signature.
    static func unsignedToken(service: String) -> String {
        let header = base64URL(#"{"alg":"none","typ":"JWT"}"#)
        let exp = Int(Date().timeIntervalSince1970) + 600
        let claims = base64URL(#"{"sub":"\#(service)","iss":"Fletcher","exp":\#(exp),"iat":0,"roles":["publish"]}"#)
        return "\(header).\(claims)."
    }

    static func base64URL(_ text: String) -> String {
        Data(text.utf8).base64EncodedString().replacingOccurrences(of: "+", with: "-")
            .replacingOccurrences(of: "/", with: "_").replacingOccurrences(of: "=", with: "")
    }

    static func base64URLDecode(_ text: String) -> Data {
        var base64 = text.replacingOccurrences(of: "-", with: "+").replacingOccurrences(of: "_", with: "/")
        while base64.count % 4 != 0 { base64 += "=" }
        return Data(base64Encoded: base64) ?? Data()
    }

    struct Claims: JWTPayload {
        var sub: SubjectClaim
        var iat: IssuedAtClaim
        var exp: ExpirationClaim
        var iss: IssuerClaim
        var roles: [String]
        func verify(using algorithm: some JWTAlgorithm) async throws {}
    }
}
