// Helpers shared by the Swift test suites: scratch stores, passing answers,
// a listener recorder, and a small clinician client for the clinic server
// that scripts/swift-test.sh starts on loopback.
import Foundation
import Katcore
import Testing

#if canImport(FoundationNetworking)
import FoundationNetworking
#endif

/// The store key the tests use (the Keychain's job in an app).
let testKey = Data((0..<32).map { UInt8($0) })

/// A directory of its own for one test, removed when the test lets go of it.
final class Scratch: Sendable {
    let url: URL

    init() throws {
        url = FileManager.default.temporaryDirectory.appendingPathComponent("katcore-swift-\(UUID().uuidString)")
        try FileManager.default.createDirectory(at: url, withIntermediateDirectories: true)
    }

    deinit {
        try? FileManager.default.removeItem(at: url)
    }

    /// Opens (or creates) the store `name` in this directory, syncing through `URLSessionTransport`.
    func open(_ name: String = "client.db", key: Data = testKey) throws -> CareStore {
        try CareStore.open(at: url.appendingPathComponent(name), key: key)
    }
}

/// An answer that makes `question` pass.
func passingAnswer(_ question: ChecklistQuestion) throws -> ChecklistAnswer {
    switch question.kind {
    case .lastTaken: return .notRecently
    case .bloodPressure: return .bloodPressure(systolic: 124, diastolic: 78)
    case .attestation: return .yesNo(value: true)
    case .choice(let options):
        let option = try #require(options.first { $0.value == "not_prescribed" || $0.value == "yes" })
        return .choice(value: option.value)
    case .freeText: return .text(value: "Be open to what comes")
    case .screening: return .yesNo(value: false)
    }
}

/// Answers every checklist and screening question of `sessionId` so that it passes.
func answerAllPassing(_ store: CareStore, sessionId: String) throws {
    let sessions = store.sessions()
    for question in store.content().checklist(locale: "en") {
        try sessions.answer(sessionId: sessionId, itemId: question.id, answer: passingAnswer(question))
    }
}

/// Records what a listener hears, from whichever thread made the change.
final class Heard: @unchecked Sendable {
    // @unchecked: every access to the arrays holds `lock`.
    private let lock = NSLock()
    private var changes: [CareChange] = []
    private var statuses: [SyncStatus] = []

    func add(_ change: CareChange) { lock.withLock { changes.append(change) } }
    func add(_ status: SyncStatus) { lock.withLock { statuses.append(status) } }
    var allChanges: [CareChange] { lock.withLock { changes } }
    var lastStatus: SyncStatus? { lock.withLock { statuses.last } }
}

/// An instant from an RFC 3339 string the test wrote itself.
func instant(_ text: String) throws -> Date {
    try #require(ISO8601DateFormatter().date(from: text), "not an RFC 3339 instant: \(text)")
}

/// The clinician's side of the clinic server on loopback (`KATCORE_CLINIC_URL`,
/// `KATCORE_CLINICIAN_TOKEN`, set by scripts/swift-test.sh): just the calls the
/// sync tests need, over the clinician API.
struct Clinic: Sendable {
    let url: String
    let token: String

    /// The server from the environment, or nil when the suite runs without one.
    static let fromEnvironment: Clinic? = {
        let env = ProcessInfo.processInfo.environment
        guard let url = env["KATCORE_CLINIC_URL"], let token = env["KATCORE_CLINICIAN_TOKEN"] else { return nil }
        return Clinic(url: url, token: token)
    }()

    /// A new client and a one-time enrollment code for them.
    func newClientWithCode(label: String) async throws -> (clientId: String, code: String) {
        let client = try await call("POST", "/v1/clients", ["label": label])
        let clientId = try #require(client["client_id"] as? String)
        let code = try await call("POST", "/v1/clients/\(clientId)/enrollment-codes", [:])
        return (clientId, try #require(code["code"] as? String))
    }

    /// Writes a clinician note into the client's record.
    func addNote(clientId: String, text: String) async throws {
        _ = try await call("POST", "/v1/clients/\(clientId)/notes", ["text": text])
    }

    /// The kinds of the client's open alerts.
    func openAlertKinds(clientId: String) async throws -> [String] {
        let alerts = try #require(try await request("GET", "/v1/alerts?status=open", nil) as? [[String: Any]])
        return alerts.filter { $0["client_id"] as? String == clientId }.compactMap { $0["kind"] as? String }
    }

    /// Revokes a device, as a clinician does for a lost phone.
    func revoke(deviceId: String) async throws {
        _ = try await request("POST", "/v1/devices/\(deviceId)/revoke", nil)
    }

    private func call(_ method: String, _ path: String, _ body: [String: String]) async throws -> [String: Any] {
        try #require(try await request(method, path, body) as? [String: Any])
    }

    private func request(_ method: String, _ path: String, _ body: [String: String]?) async throws -> Any? {
        var request = URLRequest(url: try #require(URL(string: url + path)))
        request.httpMethod = method
        request.setValue("Bearer \(token)", forHTTPHeaderField: "Authorization")
        if let body {
            request.setValue("application/json", forHTTPHeaderField: "Content-Type")
            request.httpBody = try JSONSerialization.data(withJSONObject: body)
        }
        let (data, response) = try await URLSession.shared.data(for: request)
        let status = try #require(response as? HTTPURLResponse).statusCode
        try #require((200..<300).contains(status), "\(method) \(path): HTTP \(status)")
        return data.isEmpty ? nil : try JSONSerialization.jsonObject(with: data)
    }
}
