import ArgumentParser
import FletcherApp

/// The `fletcher` executable: each subcommand is a few lines calling into FletcherApp.
@main
struct FletcherCommand: AsyncParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "fletcher",
        abstract: "Fletcher: data orchestration with in-memory DAGs.",
        discussion: """
            Configuration comes from environment variables, also read from a .env file in the working \
            directory: DATABASE_URL, BASE_URL, SECRET_KEY, REMOTE_APIS, MAX_CONNECTIONS, LOG_LEVEL.
            """,
        version: fletcherVersion,
        subcommands: [Serve.self, Migrate.self, HashKey.self, SimulateCompute.self, Stress.self],
        defaultSubcommand: Serve.self)
}
