public import Hummingbird
import Logging

/// Gives the requests that never reach an API operation (unknown path, wrong method, a body too
/// large, a failing page) a problem+json answer too, instead of an empty or plain-text one.
public struct ProblemResponseMiddleware<Context: RequestContext>: RouterMiddleware {
    public init() {}

    public func handle(_ request: Request, context: Context, next: (Request, Context) async throws -> Response) async throws -> Response {
        do {
            return try await next(request, context)
        } catch let error as any HTTPResponseError {
            let detail: String =
                switch error.status {
                case .notFound: "No such resource: \(request.method) \(request.uri.path)"
                case .methodNotAllowed: "\(request.method) is not allowed on \(request.uri.path)"
                case .contentTooLarge: "The request body is too large"
                default: "\(error)"
                }
            return Self.response(Problem(error.status, detail))
        } catch let error {
            if let problem = Problem(for: error) { return Self.response(problem) }
            context.logger.error("request failed", metadata: ["error": "\(String(reflecting: error))"])
            return Self.response(Problem(.internalServerError, "Internal error"))
        }
    }

    static func response(_ problem: Problem) -> Response {
        var headers = problem.headers
        headers[.contentType] = Problem.contentType
        return Response(status: problem.status, headers: headers, body: .init(byteBuffer: ByteBuffer(bytes: problem.body)))
    }
}
