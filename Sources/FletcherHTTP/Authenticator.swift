import Crypto
public import FletcherDomain
public import Foundation
import HTTPTypes
import JWTKit
import Synchronization

/// Issues and checks bearer tokens (docs/RULES.md rule 14): HS256 JWTs over the secret key, for configured services.
public final class Authenticator: Sendable {
    /// Token lifetime, seconds.
    public static let ttl: Int64 = 3600
    public static let issuer = "Fletcher"

    private let accounts: [String: ServiceAccount]
    private let keys: JWTKeyCollection
    /// Signs the web UI's form tokens (`formToken`): a key of its own, derived from the secret.
    private let formKey: SymmetricKey
    private let bcrypt: BcryptVerifier
    /// Checked when the service is unknown, so that a wrong name costs as much time as a wrong key.
    private let decoyHash: String
    private let throttle = LoginThrottle()
    /// The time now: logins' pauses and tokens' times are read from it.
    private let now: @Sendable () -> Date
    /// Tokens already verified, with their service and expiry: a client sends the same token with
    /// every request, and checking its signature and claims again (an actor hop, HMAC, JSON decoding)
    /// cost more than the rest of authentication. Only verified tokens enter; emptied when full.
    private let verified = Mutex<[String: (service: String, expires: Date)]>([:])
    private static let verifiedCapacity = 10_000

    /// A freshly issued token and what it grants.
    public struct Token: Sendable, Hashable {
        public var accessToken: String
        public var issued: Int64
        public var expires: Int64
        public var service: String
        public var roles: [Role]
    }

    /// `secret` must be at least 32 bytes (the configuration checks it).
    public init(
        secret: String, accounts: [ServiceAccount], bcrypt: BcryptVerifier, now: @escaping @Sendable () -> Date = { Date() }
    ) async {
        precondition(secret.utf8.count >= 32, "SECRET_KEY must be at least 32 bytes")
        self.accounts = Dictionary(accounts.map { ($0.service, $0) }, uniquingKeysWith: { _, last in last })
        self.bcrypt = bcrypt
        self.now = now
        keys = JWTKeyCollection()
        await keys.add(hmac: HMACKey(from: secret), digestAlgorithm: .sha256)
        formKey = SymmetricKey(
            data: HMAC<SHA256>.authenticationCode(for: Data("fletcher form tokens".utf8), using: SymmetricKey(data: Data(secret.utf8))))
        let cost = accounts.map(\.cost).max() ?? 10
        decoyHash = (try? await bcrypt.hash(UUID().uuidString, cost: UInt8(cost))) ?? ""
    }

    /// Checks a service's key and issues a token valid for `ttl` seconds; 401 for an unknown service
    /// or wrong key, 429 (with `Retry-After`) while `LoginThrottle` pauses the name for `client`
    /// after repeated failures. Attempts beyond those the throttle lets be checked at once wait.
    public func authenticate(service: String, key: String, client: ClientAddress) async throws -> Token {
        if let wait = await throttle.begin(service, client: client, now: now()) {
            throw Problem(
                .tooManyRequests, "Too many failed logins for this service; retry in \(Int(wait.rounded(.up))) s",
                headers: [.retryAfter: String(Int(wait.rounded(.up)))])
        }
        let account = accounts[service]
        let matches: Bool
        do {
            matches = try await bcrypt.verify(key, hash: account?.hash ?? decoyHash)
        } catch {
            throttle.end(service, client: client, outcome: .unchecked, now: now())
            throw error
        }
        guard let account, matches, !key.utf8.contains(0) else {
            throttle.end(service, client: client, outcome: .failed, now: now())
            throw Problem.unauthorized("Unknown service or wrong key")
        }
        throttle.end(service, client: client, outcome: .succeeded, now: now())
        let issued = Int64(now().timeIntervalSince1970)
        let claims = TokenClaims(
            sub: SubjectClaim(value: account.service), iat: IssuedAtClaim(value: Date(timeIntervalSince1970: Double(issued))),
            exp: ExpirationClaim(value: Date(timeIntervalSince1970: Double(issued + Self.ttl))),
            iss: IssuerClaim(value: Self.issuer), jti: IDClaim(value: UUID().uuidString.lowercased()),
            roles: account.roles.sorted().map(\.rawValue))
        let jwt = try await keys.sign(claims)
        return Token(
            accessToken: jwt, issued: issued, expires: issued + Self.ttl, service: account.service,
            roles: account.roles.sorted())
    }

    /// A token for the web UI's forms, bound to `purpose` and `subject` (a session's token, or a
    /// sign-in form's nonce): URL-safe base64 of an HMAC-SHA256 under a key derived from the secret,
    /// so only this server makes one and each session's differs (docs/RULES.md rule 32).
    public func formToken(purpose: String, subject: String) -> String {
        let code = HMAC<SHA256>.authenticationCode(for: Data("\(purpose)\u{0}\(subject)".utf8), using: formKey)
        return Data(code).base64EncodedString().replacingOccurrences(of: "+", with: "-").replacingOccurrences(of: "/", with: "_")
            .replacingOccurrences(of: "=", with: "")
    }

    /// Whether `token` is `formToken(purpose:subject:)`, compared in constant time.
    public func checkFormToken(_ token: String, purpose: String, subject: String) -> Bool {
        let expected = Array(formToken(purpose: purpose, subject: subject).utf8)
        let given = Array(token.utf8)
        guard expected.count == given.count else { return false }
        return zip(expected, given).reduce(UInt8(0)) { $0 | ($1.0 ^ $1.1) } == 0
    }

    /// The caller a session's token identifies, with the time it expires; nil when it is not one
    /// this server issued, has expired or names a service no longer configured.
    public func session(_ token: String) async -> (caller: Caller, expires: Date)? {
        guard let (service, expires) = try? await verify(token), let account = accounts[service] else { return nil }
        return (Caller(service: account.service, roles: account.roles), expires)
    }

    /// The caller a bearer `Authorization` header identifies: 401 when it is missing, malformed,
    /// badly signed, expired, or names a service no longer configured. Roles come from the configuration.
    public func caller(authorization: String?) async throws -> Caller {
        guard let authorization, !authorization.isEmpty else {
            throw Problem.unauthorized("Missing Authorization header; authenticate at /api/authenticate")
        }
        let parts = authorization.split(separator: " ", maxSplits: 1, omittingEmptySubsequences: true)
        guard parts.count == 2, parts[0].lowercased() == "bearer" else {
            throw Problem.unauthorized("The Authorization header must be 'Bearer <token>'")
        }
        let (service, _) = try await verify(String(parts[1]))
        // The configuration decides, on every request: a removed service's tokens stop working.
        guard let account = accounts[service] else {
            throw Problem.unauthorized("The token's service '\(service)' is not configured")
        }
        return Caller(service: account.service, roles: account.roles)
    }

    /// The service a token was issued to and when it expires: 401 when it is malformed, badly
    /// signed or expired.
    private func verify(_ token: String) async throws -> (service: String, expires: Date) {
        let now = self.now()
        if let known = verified.withLock({ $0[token] }), known.expires > now { return known }
        let claims: TokenClaims
        do {
            claims = try await keys.verify(token, as: TokenClaims.self)
            try claims.exp.verifyNotExpired(currentDate: now)
        } catch let error as JWTError where error.errorType == .claimVerificationFailure {
            throw Problem.unauthorized("The token has expired or was not issued by Fletcher")
        } catch {
            throw Problem.unauthorized("The token is malformed or its signature is invalid")
        }
        verified.withLock { tokens in
            if tokens.count >= Self.verifiedCapacity { tokens.removeAll(keepingCapacity: true) }
            tokens[token] = (claims.sub.value, claims.exp.value)
        }
        return (claims.sub.value, claims.exp.value)
    }
}

/// The claims of a Fletcher token.
struct TokenClaims: JWTPayload {
    var sub: SubjectClaim
    var iat: IssuedAtClaim
    var exp: ExpirationClaim
    var iss: IssuerClaim
    /// Unique to each sign-in, so that two sessions never share a token (nor their forms' tokens).
    var jti: IDClaim?
    var roles: [String]

    /// Checks the issuer; the expiry is checked by `Authenticator.caller` against its clock.
    func verify(using algorithm: some JWTAlgorithm) async throws {
        guard iss.value == Authenticator.issuer else {
            throw JWTError.claimVerificationFailure(failedClaim: iss, reason: "not issued by Fletcher")
        }
    }
}
