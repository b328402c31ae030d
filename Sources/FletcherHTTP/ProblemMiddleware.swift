public import HTTPTypes
public import Logging
public import OpenAPIRuntime

/// Turns every error of an API operation into a problem+json answer: rule violations and auth
/// failures with their status, a request that could not be decoded (body, path or query) with 400,
/// and anything else with 500, logged (a 500 is a bug).
public struct ProblemMiddleware: ServerMiddleware {
    let logger: Logger

    public init(logger: Logger) { self.logger = logger }

    public func intercept(
        _ request: HTTPRequest, body: HTTPBody?, metadata: ServerRequestMetadata, operationID: String,
        next: @Sendable (HTTPRequest, HTTPBody?, ServerRequestMetadata) async throws -> (HTTPResponse, HTTPBody?)
    ) async throws -> (HTTPResponse, HTTPBody?) {
        // Each operation answers in its one documented content type whatever `Accept` says, as the
        // original did; the generated code would otherwise fail the request after running it.
        var request = request
        request.headerFields[.accept] = nil
        do {
            return try await next(request, body, metadata)
        } catch {
            let problem = problem(for: error, operationID: operationID)
            var response = HTTPResponse(status: problem.status)
            response.headerFields = problem.headers
            response.headerFields[.contentType] = Problem.contentType
            return (response, HTTPBody(problem.body))
        }
    }

    private func problem(for error: any Error, operationID: String) -> Problem {
        guard let serverError = error as? ServerError else {
            return Problem(for: error) ?? internalError(error, operationID: operationID)
        }
        if let problem = Problem(for: serverError.underlyingError) { return problem }
        if serverError.operationInput == nil {
            // The runtime could not build the operation's input: a missing or malformed parameter or body.
            return .badRequest("Invalid request: \(serverError.causeDescription)")
        }
        return internalError(serverError.underlyingError, operationID: operationID)
    }

    private func internalError(_ error: any Error, operationID: String) -> Problem {
        logger.error("request failed", metadata: ["operation": "\(operationID)", "error": "\(String(reflecting: error))"])
        return Problem(.internalServerError, "Internal error while serving \(operationID)")
    }
}
