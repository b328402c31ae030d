@testable import FletcherSimulator
import Testing

/// The simulator's settings: which rates it accepts and how a draw becomes an outcome.
@Suite("Compute simulator: settings")
struct SettingsTests {
    static func settings(failRate: Double, hangRate: Double) -> ComputeSimulator.Settings {
        var settings = ComputeSimulator.Settings()
        settings.failRate = failRate
        settings.hangRate = hangRate
        return settings
    }

    @Test(arguments: [(0.0, 0.0), (1.0, 0.0), (0.0, 1.0), (0.3, 0.1), (0.7, 0.3)])
    func ratesFrom0To1ThatAddUpToAtMost1AreAccepted(failRate: Double, hangRate: Double) throws {
        try Self.settings(failRate: failRate, hangRate: hangRate).validate()
    }

    @Test func aRateOutside0To1IsRefusedNamingItsOption() {
        #expect(throws: ComputeSimulator.SettingsError.rateOutOfRange(option: "--fail-rate", value: 1.5)) {
            try Self.settings(failRate: 1.5, hangRate: 0).validate()
        }
        #expect(throws: ComputeSimulator.SettingsError.rateOutOfRange(option: "--hang-rate", value: -0.1)) {
            try Self.settings(failRate: 0, hangRate: -0.1).validate()
        }
        #expect(throws: ComputeSimulator.SettingsError.self) { try Self.settings(failRate: .nan, hangRate: 0).validate() }
    }

    @Test func failAndHangRatesAddingUpToMoreThan1AreRefused() {
        let error = ComputeSimulator.SettingsError.ratesAboveOne(failRate: 0.8, hangRate: 0.3)
        #expect(throws: error) { try Self.settings(failRate: 0.8, hangRate: 0.3).validate() }
        #expect(error.description == "--fail-rate (0.8) plus --hang-rate (0.3) must be at most 1: each job either fails, hangs or succeeds")
    }

    @Test func aNegativeRunTimeIsRefused() {
        var settings = ComputeSimulator.Settings()
        settings.runSeconds = -1
        #expect(throws: ComputeSimulator.SettingsError.badRunSeconds(-1)) { try settings.validate() }
    }

    @Test func aDrawFailsBelowTheFailRateHangsBelowFailPlusHangAndSucceedsAbove() {
        let settings = Self.settings(failRate: 0.3, hangRate: 0.1)
        #expect([0, 0.29].map(settings.outcome(draw:)) == [.failed, .failed])
        #expect([0.3, 0.39].map(settings.outcome(draw:)) == [.hang, .hang])
        #expect([0.4, 0.99].map(settings.outcome(draw:)) == [.success, .success])
    }
}
