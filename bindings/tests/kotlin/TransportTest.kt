// The Android module's UrlConnectionTransport on the JVM, against small
// HTTP and HTTPS servers on loopback (the JDK's com.sun.net.httpserver):
// statuses and bodies pass through whatever the status, an authentication
// challenge is an answer and not a failure, a failure names no address, and
// a clinic behind a private CA is reached only by a transport that trusts it.
package org.katcore.test

import com.sun.net.httpserver.HttpServer
import com.sun.net.httpserver.HttpsConfigurator
import com.sun.net.httpserver.HttpsServer
import java.io.File
import java.net.InetSocketAddress
import java.net.ServerSocket
import java.nio.file.Files
import java.security.KeyStore
import javax.net.ssl.KeyManagerFactory
import javax.net.ssl.SSLContext
import javax.net.ssl.TrustManagerFactory
import kotlinx.coroutines.runBlocking
import org.junit.jupiter.api.AfterEach
import org.junit.jupiter.api.Assertions.assertArrayEquals
import org.junit.jupiter.api.Assertions.assertEquals
import org.junit.jupiter.api.Assertions.assertFalse
import org.junit.jupiter.api.BeforeEach
import org.junit.jupiter.api.Test
import org.katcore.HttpRequest
import org.katcore.HttpTransportException
import org.katcore.UrlConnectionTransport

class TransportTest {
    private lateinit var server: HttpServer
    private lateinit var base: String
    private val transport = UrlConnectionTransport()

    @BeforeEach
    fun start() {
        server = HttpServer.create(InetSocketAddress("127.0.0.1", 0), 0)
        // Echoes the body reversed, with what it received in headers.
        server.createContext("/echo") { exchange ->
            val body = exchange.requestBody.readBytes().reversedArray()
            exchange.responseHeaders.add("X-Method", exchange.requestMethod)
            exchange.responseHeaders.add("X-Authorization", exchange.requestHeaders.getFirst("Authorization") ?: "")
            exchange.sendResponseHeaders(201, body.size.toLong())
            exchange.responseBody.use { it.write(body) }
        }
        server.createContext("/challenge") { exchange ->
            exchange.requestBody.readBytes()
            exchange.responseHeaders.add("WWW-Authenticate", "Bearer")
            exchange.sendResponseHeaders(401, -1)
            exchange.close()
        }
        server.createContext("/busy") { exchange ->
            val body = """{"message":"busy"}""".toByteArray()
            exchange.responseHeaders.add("Retry-After", "30")
            exchange.sendResponseHeaders(503, body.size.toLong())
            exchange.responseBody.use { it.write(body) }
        }
        server.start()
        base = "http://127.0.0.1:${server.address.port}"
    }

    @AfterEach
    fun stop() {
        server.stop(0)
    }

    private fun send(method: String, path: String, body: ByteArray = ByteArray(0), headers: Map<String, String> = emptyMap()) =
        runBlocking { transport.send(HttpRequest(method, base + path, headers, body)) }

    @Test
    fun `a POST sends its headers and body and returns the answer`() {
        val response = send("POST", "/echo", byteArrayOf(1, 2, 3), mapOf("authorization" to "Bearer kd_test"))
        assertEquals(201.toUShort(), response.status)
        assertArrayEquals(byteArrayOf(3, 2, 1), response.body)
        val headers = response.headers.mapKeys { it.key.lowercase() }
        assertEquals("POST", headers["x-method"])
        assertEquals("Bearer kd_test", headers["x-authorization"])
    }

    @Test
    fun `error statuses are answers, with their body and headers`() {
        val busy = send("GET", "/busy")
        assertEquals(503.toUShort(), busy.status)
        assertEquals("""{"message":"busy"}""", busy.body.decodeToString())
        assertEquals("30", busy.headers.entries.first { it.key.equals("retry-after", ignoreCase = true) }.value)
        // An authentication challenge is an answer too: the 401 must stop sync, not look
        // like a network failure.
        assertEquals(401.toUShort(), send("POST", "/challenge", byteArrayOf(9)).status)
    }

    @Test
    fun `no answer is Unreachable, naming no address`() {
        val closed = ServerSocket(0).use { it.localPort }
        val failure = assertThrows<HttpTransportException.Unreachable> {
            runBlocking { transport.send(HttpRequest("GET", "http://127.0.0.1:$closed/v1/pack", emptyMap(), ByteArray(0))) }
        }
        assertFalse(failure.reason.contains("127.0.0.1"), failure.reason)
        assertThrows<HttpTransportException.Unreachable> {
            runBlocking { transport.send(HttpRequest("GET", "not a url", emptyMap(), ByteArray(0))) }
        }
    }

    @Test
    fun `a clinic behind a private CA is reached through a socket factory that trusts it`() {
        val dir = Files.createTempDirectory("katcore-tls").toFile()
        val password = "katcore-test".toCharArray()
        try {
            // A self-signed certificate for 127.0.0.1, made by the JDK's keytool.
            val keystore = File(dir, "clinic.p12")
            val keytool = File(System.getProperty("java.home"), "bin/keytool").path
            val made = ProcessBuilder(
                keytool, "-genkeypair", "-alias", "clinic", "-keyalg", "EC", "-groupname", "secp256r1",
                "-dname", "CN=127.0.0.1", "-ext", "SAN=ip:127.0.0.1", "-validity", "2",
                "-storetype", "PKCS12", "-keystore", keystore.path, "-storepass", String(password),
            ).redirectErrorStream(true).start()
            assertEquals(0, made.waitFor(), made.inputStream.readBytes().decodeToString())
            val keys = KeyStore.getInstance("PKCS12").apply { keystore.inputStream().use { load(it, password) } }

            val serverContext = SSLContext.getInstance("TLS")
            serverContext.init(KeyManagerFactory.getInstance("PKIX").apply { init(keys, password) }.keyManagers, null, null)
            val https = HttpsServer.create(InetSocketAddress("127.0.0.1", 0), 0)
            https.httpsConfigurator = HttpsConfigurator(serverContext)
            https.createContext("/healthz") { exchange ->
                val body = "ok".toByteArray()
                exchange.sendResponseHeaders(200, body.size.toLong())
                exchange.responseBody.use { it.write(body) }
            }
            https.start()
            try {
                val url = "https://127.0.0.1:${https.address.port}/healthz"
                val request = HttpRequest("GET", url, emptyMap(), ByteArray(0))
                // The platform's trust store does not know this CA: no answer, and no address in the error.
                val untrusted = assertThrows<HttpTransportException.Unreachable> { runBlocking { transport.send(request) } }
                assertFalse(untrusted.reason.contains("127.0.0.1"), untrusted.reason)

                val trust = KeyStore.getInstance("PKCS12").apply {
                    load(null, null)
                    setCertificateEntry("clinic-ca", keys.getCertificate("clinic"))
                }
                val clientContext = SSLContext.getInstance("TLS")
                clientContext.init(null, TrustManagerFactory.getInstance("PKIX").apply { init(trust) }.trustManagers, null)
                val trusting = UrlConnectionTransport(sslSocketFactory = clientContext.socketFactory)
                val response = runBlocking { trusting.send(request) }
                assertEquals(200.toUShort(), response.status)
                assertEquals("ok", response.body.decodeToString())
            } finally {
                https.stop(0)
            }
        } finally {
            dir.deleteRecursively()
        }
    }
}
