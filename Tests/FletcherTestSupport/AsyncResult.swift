extension Result where Failure == any Error {
    /// What `work` returns or throws: for tests that must clean up (shut a client down) however
    /// their work ends.
    public init(catching work: () async throws -> Success) async {
        do {
            self = .success(try await work())
        } catch {
            self = .failure(error)
        }
    }
}
