// Package sdk is everything a third party imports to write a NetGuardian
// plugin: the plugin interfaces (Capture, Detector, Sink and the optional
// Store), the data that crosses the process boundary (PacketBatch,
// FeatureBatch, Alert), the feature names, config schemas, and Serve.
//
// A plugin is a program whose main calls Serve:
//
//	func main() { sdk.Serve(&myDetector{}) }
//
// Serve hides the plugin transport (HashiCorp go-plugin over gRPC with
// mutual TLS); nothing from it appears in this package's API.
package sdk

// Version is the SDK's own version, reported by every plugin in Describe.
const Version = "0.1.0"

// ProtocolVersion is the plugin protocol version this SDK speaks. The core
// negotiates it at the handshake and refuses plugins it does not support.
const ProtocolVersion = 1
