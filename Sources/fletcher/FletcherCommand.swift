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
            directory: DATABASE_URL, BASE_URL, SECRET_KEY, REMOTE_APIS, MAX_CONNECTIONS, LOG_LEVEL. \
            The subcommands that talk to a running server (plan, products, update, clear, disable, \
            rerun, events) read FLETCHER_URL, FLETCHER_SERVICE and FLETCHER_KEY, and exit with 3 when \
            the login is missing or refused, 4 for a missing dataset or product, 5 when refused (role, \
            conflict), 6 for a bad request, 7 when the server cannot be reached, 1 otherwise.
            """,
        version: "\(fletcherVersion) (commit \(buildCommit))",
        subcommands: [
            Serve.self, Migrate.self, HashKey.self, SimulateCompute.self, Stress.self, PlanCommand.self, ProductsCommand.self,
            UpdateCommand.self, ClearCommand.self, DisableCommand.self, RerunCommand.self, EventsCommand.self,
        ],
        defaultSubcommand: Serve.self)
}
