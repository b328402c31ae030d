import FletcherDomain
public import FletcherHTTP
import Foundation
import HTTPTypes
import Hummingbird

/// Who is looking at a page: a signed-in service (its roles, and the token its forms carry), or
/// nobody; and the page's own address, which the sign-in link returns to.
struct Visitor: Sendable {
    struct Viewer: Sendable {
        var service: String
        var roles: Set<Role>
        /// The form token every form of the session carries (`csrf`).
        var formToken: String

        func holds(_ role: Role) -> Bool { roles.contains(role) }
    }

    var viewer: Viewer?
    /// The path and query of the page (`/plan/…?state=failed`).
    var here: String
    /// What the page says first: the outcome of the action that led here.
    var notice: String?

    static let anonymous = Visitor(viewer: nil, here: "/")
}

/// Sign-in sessions of the web UI (docs/RULES.md rule 32): the session is the token
/// `/api/authenticate` issues, kept in an `HttpOnly`, `SameSite=Strict` cookie (`Secure` when
/// `PUBLIC_URL` is https) that expires with it. Every state-changing form carries a form token bound
/// to the session (the sign-in form: to a nonce in a cookie of its own); a POST is refused (403)
/// without it, with another session's, or from another origin.
public struct WebSessions: Sendable {
    let authenticator: Authenticator
    /// Cookies are `Secure`: the server is reached over https.
    let secure: Bool
    /// The origin the server is reached at from outside (`PUBLIC_URL`'s), besides the request's own.
    let publicOrigin: String?

    static let sessionCookie = "fletcher_session"
    static let signInCookie = "fletcher_sign_in"
    static let formPurpose = "form"
    static let signInPurpose = "sign-in"

    /// `publicURL`: where browsers reach the server (`PUBLIC_URL`).
    public init(authenticator: Authenticator, publicURL: String?) {
        self.authenticator = authenticator
        let url = publicURL.flatMap(URL.init(string:))
        secure = url?.scheme?.lowercased() == "https"
        publicOrigin = url.flatMap(Self.origin(of:))
    }

    /// The visitor of a page request.
    func visitor(_ request: Request) async -> Visitor {
        let here = request.uri.path + (request.uri.query.map { "?" + $0 } ?? "")
        let form = FormQuery(request)
        let notice = WebAction.notice(done: form["done"], changed: form.count("changed"))
        guard let token = request.cookies[Self.sessionCookie]?.value, !token.isEmpty,
            let (caller, _) = await authenticator.session(token)
        else { return Visitor(viewer: nil, here: here, notice: notice) }
        let formToken = authenticator.formToken(purpose: Self.formPurpose, subject: token)
        return Visitor(viewer: .init(service: caller.service, roles: caller.roles, formToken: formToken), here: here, notice: notice)
    }

    // MARK: Refusals

    /// Why a POST is refused before anything is read or changed.
    enum Refusal: Error, Equatable {
        /// Sent from a page of another origin (its `Origin`, or `Sec-Fetch-Site: cross-site`).
        case otherOrigin
        /// No form token, or one that is not this session's.
        case badFormToken
        /// Not signed in, or the session expired.
        case signedOut
        /// The service lacks the action's role.
        case missingRole(Role)

        var status: HTTPResponse.Status {
            switch self {
            case .signedOut: .unauthorized
            case .otherOrigin, .badFormToken, .missingRole: .forbidden
            }
        }

        var message: String {
            switch self {
            case .otherOrigin: "The form was sent from another site. Nothing was changed."
            case .badFormToken:
                "The form's security token is missing or belongs to another session (it may have expired, or you signed in again). Nothing was changed: reload the page and try again."
            case .signedOut: "Sign in to act on plans. Nothing was changed."
            case .missingRole(let role):
                "Your service does not hold the role this action needs (\(role.rawValue)). Nothing was changed."
            }
        }
    }

    /// Refuses a POST sent from a page of another origin. A browser names the page's origin in
    /// `Origin` (and `Sec-Fetch-Site`); clients that send neither still need the form token.
    func checkOrigin(_ request: Request) throws(Refusal) {
        if let site = request.headers[.secFetchSite], site == "cross-site" || site == "same-site" { throw .otherOrigin }
        guard let origin = request.headers[.origin] else { return }
        let host = request.head.authority
        let own = host.map { ["http://\($0)", "https://\($0)"] } ?? []
        guard own.contains(origin.lowercased()) || origin.lowercased() == publicOrigin else { throw .otherOrigin }
    }

    /// The signed-in visitor of a POST whose form token is the session's.
    func checkForm(_ request: Request, form: FormQuery) async throws(Refusal) -> Visitor.Viewer {
        try checkOrigin(request)
        guard let token = request.cookies[Self.sessionCookie]?.value, !token.isEmpty,
            let (caller, _) = await authenticator.session(token)
        else {
            // Without a session no form token can be right: say what to do about it.
            throw .signedOut
        }
        guard let given = form["csrf"], authenticator.checkFormToken(given, purpose: Self.formPurpose, subject: token) else {
            throw .badFormToken
        }
        return .init(service: caller.service, roles: caller.roles, formToken: given)
    }

    // MARK: Cookies

    /// The session cookie for a token issued now, expiring with it.
    func sessionCookie(_ token: Authenticator.Token) -> Cookie {
        cookie(Self.sessionCookie, token.accessToken, maxAge: Int(token.expires - token.issued))
    }

    /// Ends a cookie.
    func expired(_ name: String) -> Cookie {
        cookie(name, "", maxAge: 0)
    }

    /// The sign-in form's nonce cookie, lasting an hour.
    func signInCookie(_ nonce: String) -> Cookie {
        cookie(Self.signInCookie, nonce, maxAge: 3600)
    }

    private func cookie(_ name: String, _ value: String, maxAge: Int) -> Cookie {
        Cookie(name: name, value: value, maxAge: maxAge, path: "/", secure: secure, httpOnly: true, sameSite: .strict)
    }

    /// `scheme://host[:port]` of a URL, lowercased.
    static func origin(of url: URL) -> String? {
        guard let scheme = url.scheme?.lowercased(), let host = url.host?.lowercased() else { return nil }
        return "\(scheme)://\(host)" + (url.port.map { ":\($0)" } ?? "")
    }
}

extension HTTPField.Name {
    static let secFetchSite = HTTPField.Name("Sec-Fetch-Site")!
}
