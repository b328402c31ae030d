import AsyncHTTPClient
import FletcherTestSupport

/// Runs `body` with an HTTP client (redirects refused) and the workers `make` builds on it running
/// meanwhile, each until cancelled. Afterwards — however `body` ends — the workers are cancelled
/// and awaited, and the client is shut down: a client dropped running traps, and takes the whole
/// test process with it.
func withHTTPClient<T: Sendable>(
    running make: (HTTPClient) -> [@Sendable () async throws -> Void], _ body: () async throws -> T
) async throws -> T {
    let http = HTTPClient(eventLoopGroupProvider: .singleton, configuration: .init(redirectConfiguration: .disallow))
    let running = make(http).map { work in Task { try await work() } }
    let result = await Result(catching: body)
    for task in running { task.cancel() }
    for task in running { _ = try? await task.value }
    try await http.shutdown()
    return try result.get()
}
