import FletcherDomain
import FletcherHTTP
import FletcherJSON
import FletcherStore
import Foundation
import Hummingbird

/// Sign-in, sign-out and the actions' forms (docs/RULES.md rule 32).
extension WebUI {
    // MARK: Sign-in

    func signInPage(_ request: Request) async throws -> Response {
        let visitor = await sessions.visitor(request)
        let next = Self.localPath(FormQuery(request)["next"]) ?? "/"
        return signInForm(visitor: visitor, next: next, service: "", error: nil, status: .ok)
    }

    /// The sign-in form, with a fresh nonce cookie its token is bound to.
    private func signInForm(visitor: Visitor, next: String, service: String, error: String?, status: HTTPResponse.Status) -> Response {
        let nonce = UUID.random().lowercased
        let token = sessions.authenticator.formToken(purpose: WebSessions.signInPurpose, subject: nonce)
        var response = html(
            LoginView.page(visitor: visitor, next: next, service: service, formToken: token, error: error, assets: assets), status: status)
        response.setCookie(sessions.signInCookie(nonce))
        return response
    }

    func signIn(_ request: Request) async throws -> Response {
        let form = try await FormQuery.body(of: request)
        let visitor = Visitor(viewer: nil, here: "/login")
        let next = Self.localPath(form["next"]) ?? "/"
        let service = form["service"] ?? ""
        do {
            try sessions.checkOrigin(request)
        } catch {
            return html(page(visitor, title: "Not signed in", ActionView.refusal(error.message, back: "/login")), status: .forbidden)
        }
        guard let nonce = request.cookies[WebSessions.signInCookie]?.value, let given = form["csrf"],
            sessions.authenticator.checkFormToken(given, purpose: WebSessions.signInPurpose, subject: nonce)
        else {
            return signInForm(
                visitor: visitor, next: next, service: service,
                error: "The sign-in form expired or came from elsewhere. Nothing was sent: try again.", status: .forbidden)
        }
        guard !service.isEmpty, let key = form["key"], !key.isEmpty else {
            return signInForm(
                visitor: visitor, next: next, service: service, error: "Enter a service name and its key.", status: .badRequest)
        }
        let token: Authenticator.Token
        do {
            token = try await sessions.authenticator.authenticate(service: service, key: key, client: ClientAddress.current)
        } catch let problem as Problem {
            var response = signInForm(visitor: visitor, next: next, service: service, error: problem.detail, status: problem.status)
            for field in problem.headers where field.name == .retryAfter { response.headers.append(field) }
            return response
        }
        var response = Response(status: .seeOther, headers: [.location: next, .cacheControl: "no-store"])
        response.setCookie(sessions.sessionCookie(token))
        response.setCookie(sessions.expired(WebSessions.signInCookie))
        return response
    }

    func signOut(_ request: Request) async throws -> Response {
        let form = try await FormQuery.body(of: request)
        do {
            _ = try await sessions.checkForm(request, form: form)
        } catch .signedOut {
            // Already signed out: there is nothing to end.
        } catch {
            let visitor = await sessions.visitor(request)
            return html(page(visitor, title: "Not signed out", ActionView.refusal(error.message, back: "/")), status: error.status)
        }
        var response = Response(status: .seeOther, headers: [.location: "/", .cacheControl: "no-store"])
        response.setCookie(sessions.expired(WebSessions.sessionCookie))
        return response
    }

    // MARK: Actions

    /// `POST /plan/{id}/action`: without `confirm=yes`, the confirmation (what would change); with
    /// it, the change, then back to the page it came from with a notice. Refusals are pages that
    /// say what went wrong; nothing is changed.
    func action(_ request: Request, context: some RequestContext) async throws -> Response {
        let form = try await FormQuery.body(of: request)
        let datasetId = datasetId(context)
        let fallback = datasetId.map { "/plan/\($0.lowercased)" } ?? "/"
        let back = Self.localPath(form["back"]) ?? fallback
        let viewer: Visitor.Viewer
        do {
            viewer = try await sessions.checkForm(request, form: form)
        } catch {
            let visitor = await sessions.visitor(request)
            return html(page(visitor, title: "Not done", ActionView.refusal(error.message, back: back)), status: error.status)
        }
        let visitor = Visitor(viewer: viewer, here: back)
        func refuse(_ message: String, _ status: HTTPResponse.Status) -> Response {
            html(page(visitor, title: "Not done", ActionView.refusal(message, back: back)), status: status)
        }
        guard let datasetId else { return refuse("No plan has the dataset id in this address. Nothing was changed.", .notFound) }
        let action: WebAction
        switch WebAction.parse(form) {
        case .success(let parsed): action = parsed
        case .failure(let error): return refuse(error.message + " Nothing was changed.", .badRequest)
        }
        guard viewer.holds(action.role) else {
            return refuse(WebSessions.Refusal.missingRole(action.role).message, .forbidden)
        }
        do {
            if form["confirm"] == "yes" {
                let changed = try await apply(action, to: datasetId, by: viewer.service)
                let separator = back.contains("?") ? "&" : "?"
                let location = back + separator + "done=\(action.name)" + (changed.map { "&changed=\($0)" } ?? "")
                return Response(status: .seeOther, headers: [.location: location, .cacheControl: "no-store"])
            }
            let (plan, changes) = try await preview(action, of: datasetId, by: viewer.service)
            return html(
                page(
                    visitor, title: "Confirm",
                    ActionView.confirmation(action, plan: plan, changes: changes, viewer: viewer, back: back),
                    crumbs: [.init(title: "Search", href: "/"), .init(title: "Plan", href: "/plan/\(datasetId.lowercased)"),
                        .init(title: "Confirm")]))
        } catch {
            guard let problem = Problem(for: error) else { throw error }
            return refuse(problem.detail + ". Nothing was changed.", problem.status)
        }
    }

    /// What an action would change, worked out on the stored plan.
    private func preview(_ action: WebAction, of datasetId: UUID, by service: String) async throws -> (Plan, [ProductChange]) {
        guard let mutation = action.mutation else {
            guard let plan = try await store.plan(datasetId) else { throw PlanError.datasetNotFound(datasetId) }
            let outcomes = try await store.bulk(WebAction.failedProducts(of: datasetId, dryRun: true), by: service, via: .web)
            if let error = outcomes.first?.error { throw error }
            return (plan, outcomes.first?.changes ?? [])
        }
        let change = try await store.preview(mutation, to: datasetId, by: service, via: .web)
        return (change.plan, ProductChange.of(change))
    }

    /// Applies an action; the number of products whose state changed (nil for a pause or unpause).
    private func apply(_ action: WebAction, to datasetId: UUID, by service: String) async throws -> Int? {
        guard let mutation = action.mutation else {
            let outcomes = try await store.bulk(WebAction.failedProducts(of: datasetId, dryRun: false), by: service, via: .web)
            // A dataset with no failed product selects nothing: it must still exist.
            if outcomes.isEmpty, try await store.plan(datasetId) == nil { throw PlanError.datasetNotFound(datasetId) }
            for outcome in outcomes {
                if let error = outcome.error { throw error }
                transitions.record(outcome.transitions)
                events.record(outcome.events)
            }
            return outcomes.reduce(0) { $0 + $1.changes.count }
        }
        let change = try await store.apply(mutation, to: datasetId, by: service, via: .web)
        transitions.record(change.transitions)
        events.record(change.events)
        switch action {
        case .pause, .unpause: return nil
        default: return ProductChange.of(change).count
        }
    }

    /// A page of the site's frame around `body`.
    func page(_ visitor: Visitor, title: String, _ body: HTML, crumbs: [Layout.Crumb]? = nil) -> HTML {
        Layout.page(
            title: title, crumbs: crumbs ?? [.init(title: "Search", href: "/"), .init(title: title)], assets: assets, visitor: visitor,
            body: body)
    }

    /// A path on this site to go back to: `/…` but not `//…` (another host), nothing else.
    static func localPath(_ text: String?) -> String? {
        guard let text, text.hasPrefix("/"), !text.hasPrefix("//"), !text.hasPrefix("/\\"),
            !text.contains(where: { $0.isNewline || $0 == "\\" })
        else { return nil }
        return text
    }
}

/// The sign-in page.
enum LoginView {
    static func page(visitor: Visitor, next: String, service: String, formToken: String, error: String?, assets: Assets) -> HTML {
        let current: HTML =
            visitor.viewer.map { viewer in
                "<p class=\"note\">You are signed in as <strong>\(viewer.service)</strong>. Signing in again replaces that session.</p>"
            } ?? ""
        let problem: HTML = error.map { "<p class=\"error\" role=\"alert\" id=\"login-error\">\($0)</p>" } ?? ""
        let described: HTML = error == nil ? "" : " aria-describedby=\"login-error\""
        let body: HTML = """
            <h1>Sign in</h1>
            <p>Sign in with a service's name and key (those the API's <code>/api/authenticate</code> takes) to act on \
            plans. Looking needs no sign-in.</p>
            \(current)
            \(problem)
            <form class="login" method="post" action="/login"\(described)>
            <input type="hidden" name="csrf" value="\(formToken)">
            <input type="hidden" name="next" value="\(next)">
            <label for="service">Service</label>
            <input id="service" name="service" type="text" value="\(service)" autocomplete="username" required \
            autocapitalize="off" spellcheck="false">
            <label for="key">Key</label>
            <input id="key" name="key" type="password" autocomplete="current-password" required>
            <button type="submit" class="primary">Sign in</button>
            </form>
            """
        return Layout.page(title: "Sign in", crumbs: [.init(title: "Search", href: "/"), .init(title: "Sign in")], assets: assets, visitor: visitor, body: body)
    }
}
