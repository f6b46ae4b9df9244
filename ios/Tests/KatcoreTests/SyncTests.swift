// Sync through URLSessionTransport against a real katcore-clinic on
// loopback (started by scripts/swift-test.sh): enrolment, offline and back,
// a clinician's note arriving, an urgent reading becoming a clinic alert,
// and a revoked device. Each test enrols a client of its own, so they run
// in parallel.
import Foundation
import Katcore
import Testing

@Suite("Sync with a clinic on loopback", .enabled(if: Clinic.fromEnvironment != nil, "set KATCORE_CLINIC_URL and KATCORE_CLINICIAN_TOKEN (scripts/swift-test.sh does)"))
struct SyncTests {
    let scratch: Scratch
    let clinic: Clinic

    init() throws {
        scratch = try Scratch()
        clinic = try #require(Clinic.fromEnvironment)
    }

    @Test func enrollsWaitsOfflineAndCatchesUpWhenBackOnline() async throws {
        let (_, code) = try await clinic.newClientWithCode(label: "Swift offline client")
        let store = try scratch.open()
        let sync = store.sync()
        let heard = Heard()
        let handle = store.observe(onRecordChanged: { _ in }, onSyncStatusChanged: { heard.add($0) })
        defer { handle.cancel() }

        await #expect(throws: KatcoreError.NotEnrolled) { try await sync.syncNow() }
        // Nothing listens on port 9 of loopback: a typed Network error that names no address.
        do {
            _ = try await sync.enroll(serverUrl: "http://127.0.0.1:9", code: code, deviceLabel: "Swift test phone")
            Issue.record("enrolment through a closed port succeeded")
        } catch KatcoreError.Network(let reason) {
            #expect(!reason.contains("127.0.0.1"))
        }
        await #expect(throws: KatcoreError.InvalidCode) {
            try await sync.enroll(serverUrl: clinic.url, code: "AAAA-BBBB-CCCC", deviceLabel: "Swift test phone")
        }
        let enrollment = try await sync.enroll(serverUrl: clinic.url, code: code, deviceLabel: "Swift test phone")
        #expect(try sync.enrollment() == enrollment)
        #expect(enrollment.clinicName == "Swift Test Clinic")

        _ = try store.journal().write(text: "Written on the train")
        _ = try store.wellbeing().recordBloodPressure(systolic: 121, diastolic: 79)
        #expect(!sync.setOnline(online: false))
        await #expect(throws: KatcoreError.Offline) { try await sync.syncIfDue() }
        let offline = sync.status()
        #expect(offline.enrolled && !offline.online && offline.pendingChanges > 0)
        #expect(offline.lastSuccess == nil)

        #expect(sync.setOnline(online: true), "back online with changes pending: worth syncing")
        let report = try await sync.syncIfDue()
        #expect(report.sentChanges)
        let after = sync.status()
        #expect(after.online)
        #expect(after.lastSuccess != nil)
        #expect(after.pendingChanges == 0)
        #expect(after.lastError == nil)
        #expect(heard.lastStatus == after)
    }

    @Test func aClinicianNoteArrivesAndAnUrgentReadingBecomesAClinicAlert() async throws {
        let (clientId, code) = try await clinic.newClientWithCode(label: "Swift urgent client")
        let store = try scratch.open()
        let sync = store.sync()
        _ = try await sync.enroll(serverUrl: clinic.url, code: code, deviceLabel: "Swift test phone")
        _ = try await sync.syncNow()
        #expect(try await clinic.openAlertKinds(clientId: clientId).isEmpty)

        // The care team writes; the phone hears it arrive with its next sync.
        try await clinic.addNote(clientId: clientId, text: "Call us before your next session, please.")
        let heard = Heard()
        let handle = store.observe(onRecordChanged: { heard.add($0) })
        defer { handle.cancel() }
        // An urgent reading, taken offline: the phone says it is urgent at once.
        #expect(try store.wellbeing().recordBloodPressure(systolic: 190, diastolic: 125).urgent)
        #expect(sync.status().urgentPending)

        let report = try await sync.syncNow()
        #expect(report.sentChanges && report.receivedChanges)
        #expect(heard.allChanges.contains(.received))
        let notes = store.journal().careTeamNotes()
        #expect(notes.map(\.text) == ["Call us before your next session, please."])
        #expect(notes.first?.author == "Test Clinician")
        // The server re-derives urgency from the reading itself and raises the alert.
        #expect(try await clinic.openAlertKinds(clientId: clientId) == ["urgent_blood_pressure"])
        #expect(!sync.status().urgentPending)
    }

    @Test func aRevokedDeviceIsToldSoAndStopsSyncing() async throws {
        let (_, code) = try await clinic.newClientWithCode(label: "Swift lost phone")
        let store = try scratch.open()
        let sync = store.sync()
        let enrollment = try await sync.enroll(serverUrl: clinic.url, code: code, deviceLabel: "Swift lost phone")
        _ = try await sync.syncNow()

        try await clinic.revoke(deviceId: enrollment.deviceId)
        _ = try store.journal().write(text: "Written after the phone was lost")
        await #expect(throws: KatcoreError.Revoked) { try await sync.syncNow() }
        let status = sync.status()
        #expect(status.stopped)
        #expect(status.pendingChanges > 0, "nothing is dropped: the entry stays on the phone")
        // A permanent failure repeats itself rather than retrying.
        await #expect(throws: KatcoreError.Revoked) { try await sync.syncIfDue() }
    }
}
