import FletcherDomain
import FletcherJSON
import FletcherStore
import FletcherTestSupport
@testable import FletcherWeb
import Foundation
import HTTPTypes
import Testing

/// Sign-in, form tokens and the actions of the web UI (docs/RULES.md rule 32), as a browser without
/// JavaScript uses them: plain forms and cookies.
@Suite("Web sign-in and actions")
struct ActionTests {
    let names = Names()

    /// Signs in through the form; the `Cookie` header of the session.
    static func signIn(_ app: WebTestApp, service: String = "web", key: String? = nil) async throws -> String {
        let form = try await app.get("/login")
        let nonce = try #require(form.cookie("fletcher_sign_in"))
        let token = try #require(form.field("csrf"))
        let signedIn = try await app.post(
            "/login", form: [("csrf", token), ("next", "/"), ("service", service), ("key", key ?? "\(service)-key")],
            cookies: "fletcher_sign_in=\(nonce)")
        #expect(signedIn.status == .seeOther)
        return "fletcher_session=\(try #require(signedIn.cookie("fletcher_session")))"
    }

    /// A plan `a → b`, `c`, with `a` failed (no retries: the failure is final).
    func failedPlan(_ app: WebTestApp) async throws -> PlanFixture {
        let fixture = PlanFixture(names: names).products("a", "b", "c").edge("a", "b")
        try await app.submit(fixture)
        _ = try await app.store.apply(.update([StateUpdate(id: names["a"], state: .failed)]), to: fixture.datasetId, by: "platform")
        return fixture
    }

    func states(_ app: WebTestApp, _ fixture: PlanFixture) async throws -> [String: DataProductState] {
        let plan = try #require(try await app.store.plan(fixture.datasetId))
        return Dictionary(uniqueKeysWithValues: plan.dataProducts.map { (names.name($0.id), $0.state) })
    }

    @Test(arguments: TestEngine.available)
    func signingInSetsAStrictHttpOnlySessionCookieThatExpiresLikeAToken(engine: TestEngine) async throws {
        let app = try await WebTestApp(engine: engine)
        let form = try await app.get("/login?next=/plan/x")
        #expect(form.status == .ok)
        #expect(form.contains("<form class=\"login\" method=\"post\" action=\"/login\""))
        #expect(form.contains("name=\"next\" value=\"/plan/x\""))
        let nonceCookie = try #require(form.setCookies.first { $0.hasPrefix("fletcher_sign_in=") })
        #expect(nonceCookie.contains("HttpOnly") && nonceCookie.contains("SameSite=Strict") && !nonceCookie.contains("Secure"))
        let nonce = try #require(form.cookie("fletcher_sign_in"))
        let token = try #require(form.field("csrf"))
        let signedIn = try await app.post(
            "/login", form: [("csrf", token), ("next", "/plan/x"), ("service", "web"), ("key", "web-key")],
            cookies: "fletcher_sign_in=\(nonce)")
        #expect(signedIn.status == .seeOther)
        #expect(signedIn.headers[.location] == "/plan/x")
        let session = try #require(signedIn.setCookies.first { $0.hasPrefix("fletcher_session=") })
        #expect(session.contains("HttpOnly"))
        #expect(session.contains("SameSite=Strict"))
        #expect(session.contains("Path=/"))
        #expect(!session.contains("Secure"))
        // As long as the token /api/authenticate issues (an hour).
        #expect(session.contains("Max-Age=3600"))
        // The session is the API's token: pages now show who is signed in.
        let cookie = "fletcher_session=\(try #require(signedIn.cookie("fletcher_session")))"
        let home = try await app.get("/", cookies: cookie)
        #expect(home.contains("Signed in as <strong>web</strong>"))
        #expect(home.contains("<form class=\"sign-out\" method=\"post\" action=\"/logout\">"))
        // Signing out ends the cookie.
        let signedOut = try await app.post("/logout", form: [("csrf", try #require(home.field("csrf")))], cookies: cookie)
        #expect(signedOut.status == .seeOther)
        #expect(signedOut.setCookies.contains { $0.hasPrefix("fletcher_session=;") && $0.contains("Max-Age=0") })
        // Looking needs no sign-in.
        let anonymous = try await app.get("/")
        #expect(anonymous.status == .ok)
        #expect(anonymous.contains("<a class=\"sign-in\" href=\"/login?next=/\">Sign in</a>"))
    }

    @Test(arguments: TestEngine.available)
    func cookiesAreSecureWhenThePublicURLIsHTTPS(engine: TestEngine) async throws {
        let app = try await WebTestApp(engine: engine, publicURL: "https://fletcher.example.com")
        let form = try await app.get("/login")
        let signedIn = try await app.post(
            "/login", form: [("csrf", try #require(form.field("csrf"))), ("service", "web"), ("key", "web-key")],
            cookies: "fletcher_sign_in=\(try #require(form.cookie("fletcher_sign_in")))",
            headers: [.origin: "https://fletcher.example.com"])
        #expect(signedIn.status == .seeOther)
        #expect(try #require(signedIn.setCookies.first { $0.hasPrefix("fletcher_session=") }).contains("Secure"))
    }

    @Test(arguments: TestEngine.available)
    func aSignInWithoutItsFormTokenFromElsewhereOrWithAWrongKeyIsRefused(engine: TestEngine) async throws {
        let app = try await WebTestApp(engine: engine)
        let form = try await app.get("/login")
        let nonce = "fletcher_sign_in=\(try #require(form.cookie("fletcher_sign_in")))"
        let token = try #require(form.field("csrf"))
        let fields = [("service", "web"), ("key", "web-key")]
        // No token, a token of another sign-in form, no nonce cookie: 403 and no session.
        let other = try await app.get("/login")
        for (form, cookies) in [
            (fields, nonce), ([("csrf", try #require(other.field("csrf")))] + fields, nonce), ([("csrf", token)] + fields, ""),
        ] {
            let refused = try await app.post("/login", form: form, cookies: cookies)
            #expect(refused.status == .forbidden)
            #expect(refused.cookie("fletcher_session") == nil)
            #expect(refused.contains("The sign-in form expired or came from elsewhere"))
        }
        // From another site's page.
        let crossSite = try await app.post("/login", form: [("csrf", token)] + fields, cookies: nonce, headers: [.origin: "https://evil.example"])
        #expect(crossSite.status == .forbidden)
        #expect(crossSite.cookie("fletcher_session") == nil)
        // A wrong key: the API's answer, on the form, the service kept.
        let wrong = try await app.post(
            "/login", form: [("csrf", token), ("service", "web"), ("key", "nope")], cookies: nonce)
        #expect(wrong.status == .unauthorized)
        #expect(wrong.contains("role=\"alert\""))
        #expect(wrong.contains("value=\"web\""))
        #expect(wrong.cookie("fletcher_session") == nil)
        // Nothing entered.
        let empty = try await app.post("/login", form: [("csrf", token), ("service", ""), ("key", "")], cookies: nonce)
        #expect(empty.status == .badRequest)
        #expect(empty.contains("Enter a service name and its key."))
    }

    @Test(arguments: TestEngine.available)
    func actionsAreShownOnlyToAServiceHoldingTheirRole(engine: TestEngine) async throws {
        let app = try await WebTestApp(engine: engine)
        let fixture = try await failedPlan(app)
        let planPath = "/plan/\(fixture.datasetId.lowercased)"
        let productPath = "\(planPath)/product/\(names["a"].lowercased)"
        for path in [planPath, productPath] {
            #expect(!(try await app.get(path)).contains("action-form"))
            #expect(!(try await app.get(path, cookies: try await Self.signIn(app, service: "viewer"))).contains("action-form"))
        }
        let session = try await Self.signIn(app)
        let plan = try await app.get(planPath, cookies: session)
        #expect(plan.contains("name=\"action\" value=\"pause\""))
        #expect(plan.contains("name=\"action\" value=\"clear_failed\""))
        let product = try await app.get(productPath, cookies: session)
        for action in ["clear", "retry", "disable"] { #expect(product.contains("name=\"action\" value=\"\(action)\"")) }
        // Retry is for failed products only.
        let waiting = try await app.get("\(planPath)/product/\(names["b"].lowercased)", cookies: session)
        #expect(waiting.contains("value=\"clear\"") && !waiting.contains("value=\"retry\""))
    }

    @Test(arguments: TestEngine.available)
    func aPostWithoutTheSessionsTokenFromAnotherOriginOrWithoutTheRoleChangesNothing(engine: TestEngine) async throws {
        let app = try await WebTestApp(engine: engine)
        let fixture = try await failedPlan(app)
        let path = "/plan/\(fixture.datasetId.lowercased)/action"
        let before = try await states(app, fixture)
        let session = try await Self.signIn(app)
        let token = try #require(try await app.get("/", cookies: session).field("csrf"))
        let otherSession = try await Self.signIn(app)
        let otherToken = try #require(try await app.get("/", cookies: otherSession).field("csrf"))
        #expect(token != otherToken)
        let action = [("action", "clear"), ("product", names["a"].lowercased), ("confirm", "yes")]
        let refusals: [(form: [(String, String)], cookies: String?, headers: HTTPFields, status: HTTPResponse.Status, says: String)] = [
            (action, session, [:], .forbidden, "security token is missing"),
            ([("csrf", otherToken)] + action, session, [:], .forbidden, "belongs to another session"),
            ([("csrf", "x")] + action, session, [:], .forbidden, "security token"),
            ([("csrf", token)] + action, session, [.origin: "https://evil.example"], .forbidden, "from another site"),
            ([("csrf", token)] + action, session, [HTTPField.Name("Sec-Fetch-Site")!: "cross-site"], .forbidden, "from another site"),
            ([("csrf", token)] + action, nil, [:], .unauthorized, "Sign in to act on plans"),
        ]
        for refusal in refusals {
            let page = try await app.post(path, form: refusal.form, cookies: refusal.cookies, headers: refusal.headers)
            #expect(page.status == refusal.status, "\(refusal.form) \(refusal.headers)")
            #expect(page.contains(refusal.says))
            #expect(page.contains("Nothing was changed"))
            #expect(page.headers[.contentType] == "text/html; charset=utf-8")
        }
        // A service without the role, with its own valid token: refused by the server.
        let viewer = try await Self.signIn(app, service: "viewer")
        let viewerToken = try #require(try await app.get("/", cookies: viewer).field("csrf"))
        for name in ["clear", "retry", "disable", "pause", "clear_failed"] {
            let forged = try await app.post(
                path, form: [("csrf", viewerToken), ("action", name), ("product", names["a"].lowercased), ("confirm", "yes")],
                cookies: viewer)
            #expect(forged.status == .forbidden)
            #expect(forged.contains("does not hold the role"))
        }
        // The session's own token is taken.
        let same = try await app.post(path, form: [("csrf", token)] + action, cookies: session)
        #expect(same.status == .seeOther)
        #expect(try await states(app, fixture)["a"] != before["a"])
        #expect(try await states(app, fixture)["c"] == before["c"])
    }

    @Test(arguments: TestEngine.available)
    func clearShowsWhatWillChangeThenClearsDownstreamAsTheWebChannel(engine: TestEngine) async throws {
        let app = try await WebTestApp(engine: engine)
        let fixture = try await failedPlan(app)
        _ = try await app.store.apply(.update([StateUpdate(id: names["c"], state: .success)]), to: fixture.datasetId, by: "platform")
        let session = try await Self.signIn(app)
        let token = try #require(try await app.get("/", cookies: session).field("csrf"))
        let path = "/plan/\(fixture.datasetId.lowercased)/action"
        let back = "/plan/\(fixture.datasetId.lowercased)/product/\(names["a"].lowercased)"
        let form = [("csrf", token), ("action", "clear"), ("product", names["a"].lowercased), ("back", back)]
        // The dry run: a's new try is queued at once (no parents); b stays waiting.
        let confirmation = try await app.post(path, form: form, cookies: session)
        #expect(confirmation.status == .ok)
        #expect(confirmation.contains("Clear a:1.0.0 and everything downstream?"))
        #expect(confirmation.contains("1 data product would change state:"))
        #expect(confirmation.contains("<span class=\"badge state failed\">failed</span></td><td><span class=\"badge state queued\">queued</span>"))
        #expect(confirmation.contains("name=\"confirm\" value=\"yes\""))
        #expect(try await states(app, fixture) == ["a": .failed, "b": .waiting, "c": .success])
        let done = try await app.post(path, form: form + [("confirm", "yes")], cookies: session)
        #expect(done.status == .seeOther)
        #expect(done.headers[.location] == back + "?done=clear&changed=1")
        #expect(try await states(app, fixture) == ["a": .queued, "b": .waiting, "c": .success])
        let page = try await app.get(back + "?done=clear&changed=1", cookies: session)
        #expect(page.contains("<p class=\"notice\" role=\"status\">Cleared: 1 data product changed state.</p>"))
        // a went back to waiting by the web UI's request, then the trigger rule queued it.
        let history = try #require(try await app.store.history(datasetId: fixture.datasetId, dataProductId: names["a"], before: nil, limit: 2))
        let changes = history.events.compactMap { event -> (StateTransition, String)? in
            guard case .stateChange(let transition, let actor) = event.kind else { return nil }
            return (transition, actor)
        }
        #expect(changes.map(\.0.to) == [.queued, .waiting])
        #expect(changes.map(\.0.reason) == [.triggerRule, .web])
        #expect(changes.last?.1 == "web")
        #expect(page.contains("web UI"))
        #expect(try await app.store.plan(fixture.datasetId)?.dataset.modifiedBy == "web")
    }

    @Test(arguments: TestEngine.available)
    func retryNowQueuesAFailedProductAndDisableTakesOneOut(engine: TestEngine) async throws {
        let app = try await WebTestApp(engine: engine)
        let fixture = try await failedPlan(app)
        let session = try await Self.signIn(app)
        let token = try #require(try await app.get("/", cookies: session).field("csrf"))
        let path = "/plan/\(fixture.datasetId.lowercased)/action"
        let retry = [("csrf", token), ("action", "retry"), ("product", names["a"].lowercased)]
        let confirmation = try await app.post(path, form: retry, cookies: session)
        #expect(confirmation.contains("Retry a:1.0.0 now?"))
        #expect(try await app.post(path, form: retry + [("confirm", "yes")], cookies: session).status == .seeOther)
        #expect(try await states(app, fixture)["a"] == .queued)
        // Not failed any more: refused, with the API's reason.
        let again = try await app.post(path, form: retry + [("confirm", "yes")], cookies: session)
        #expect(again.status == .conflict)
        #expect(again.contains("is queued, not failed"))
        let disable = [("csrf", token), ("action", "disable"), ("product", names["c"].lowercased)]
        #expect(try await app.post(path, form: disable, cookies: session).contains("Disable c:1.0.0?"))
        let done = try await app.post(path, form: disable + [("confirm", "yes")], cookies: session)
        #expect(done.headers[.location] == "/plan/\(fixture.datasetId.lowercased)?done=disable&changed=1")
        #expect(try await states(app, fixture)["c"] == .disabled)
    }

    @Test(arguments: TestEngine.available)
    func pauseUnpauseAndClearingEveryFailedProductOfAPlan(engine: TestEngine) async throws {
        let app = try await WebTestApp(engine: engine)
        let fixture = PlanFixture(names: names).products("a", "b", "c").edge("a", "b")
        try await app.submit(fixture)
        _ = try await app.store.apply(
            .update([StateUpdate(id: names["a"], state: .failed), StateUpdate(id: names["c"], state: .failed)]), to: fixture.datasetId,
            by: "platform")
        let session = try await Self.signIn(app)
        let token = try #require(try await app.get("/", cookies: session).field("csrf"))
        let path = "/plan/\(fixture.datasetId.lowercased)/action"
        let clear = [("csrf", token), ("action", "clear_failed")]
        let confirmation = try await app.post(path, form: clear, cookies: session)
        #expect(confirmation.contains("Clear every failed data product of this plan?"))
        #expect(confirmation.contains("2 data products would change state:"))
        #expect(confirmation.contains("Clear 2 failed products"))
        let cleared = try await app.post(path, form: clear + [("confirm", "yes")], cookies: session)
        #expect(cleared.headers[.location] == "/plan/\(fixture.datasetId.lowercased)?done=clear_failed&changed=2")
        #expect(try await states(app, fixture) == ["a": .queued, "b": .waiting, "c": .queued])
        // Nothing failed any more: confirming again changes nothing.
        let none = try await app.post(path, form: clear, cookies: session)
        #expect(none.contains("No data product would change state."))
        let pause = [("csrf", token), ("action", "pause")]
        #expect(try await app.post(path, form: pause, cookies: session).contains("Pause this plan?"))
        #expect(try await app.post(path, form: pause + [("confirm", "yes")], cookies: session).status == .seeOther)
        #expect(try await app.store.plan(fixture.datasetId)?.dataset.paused == true)
        let plan = try await app.get("/plan/\(fixture.datasetId.lowercased)?done=pause", cookies: session)
        #expect(plan.contains("Paused the plan."))
        #expect(plan.contains("name=\"action\" value=\"unpause\""))
        let twice = try await app.post(path, form: pause + [("confirm", "yes")], cookies: session)
        #expect(twice.status == .badRequest)
        #expect(twice.contains("Nothing was changed"))
        #expect(try await app.post(path, form: [("csrf", token), ("action", "unpause"), ("confirm", "yes")], cookies: session).status == .seeOther)
        #expect(try await app.store.plan(fixture.datasetId)?.dataset.paused == false)
    }

    @Test(arguments: TestEngine.available)
    func badFormsAreRefusedOnAPageAndChangeNothing(engine: TestEngine) async throws {
        let app = try await WebTestApp(engine: engine)
        let fixture = try await failedPlan(app)
        let before = try await states(app, fixture)
        let session = try await Self.signIn(app)
        let token = try #require(try await app.get("/", cookies: session).field("csrf"))
        let path = "/plan/\(fixture.datasetId.lowercased)/action"
        let cases: [([(String, String)], HTTPResponse.Status, String)] = [
            ([("action", "explode")], .badRequest, "&#39;explode&#39; is not an action"),
            ([], .badRequest, "The form names no action."),
            ([("action", "clear")], .badRequest, "The form names no data product."),
            ([("action", "clear"), ("product", "nope")], .badRequest, "&#39;nope&#39; is not a data product id."),
            ([("action", "clear"), ("product", UUID().uuidString)], .notFound, "not found"),
        ]
        for (form, status, says) in cases {
            let page = try await app.post(path, form: [("csrf", token), ("confirm", "yes")] + form, cookies: session)
            #expect(page.status == status, "\(form)")
            #expect(page.text.lowercased().contains(says.lowercased()), "\(form): \(page.text)")
            #expect(page.contains("Nothing was changed"))
        }
        let unknownPlan = try await app.post(
            "/plan/\(UUID().uuidString)/action", form: [("csrf", token), ("action", "pause"), ("confirm", "yes")], cookies: session)
        #expect(unknownPlan.status == .notFound)
        // `back` leads only to this site.
        let away = try await app.post(
            path, form: [("csrf", token), ("action", "pause"), ("confirm", "yes"), ("back", "//evil.example/x")], cookies: session)
        #expect(away.headers[.location] == "/plan/\(fixture.datasetId.lowercased)?done=pause")
        _ = try await app.store.apply(.unpause, to: fixture.datasetId, by: "test")
        #expect(try await states(app, fixture) == before)
    }
}
