import ArgumentParser
import FletcherApp
import Logging

struct Migrate: AsyncParsableCommand {
    static let configuration = CommandConfiguration(
        abstract: "Apply pending database migrations and exit (serve also applies them at start).")

    func run() async throws {
        let configuration = try loadConfiguration()
        let logger = bootstrapLogging(level: configuration.logLevel)
        let setup = try StoreSetup(configuration.database, maxConnections: 2, logger: logger)
        try await setup.migrate()
        print("Migrations applied to \(configuration.database.description).")
    }
}
