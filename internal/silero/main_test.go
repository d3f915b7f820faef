package silero

import (
	"os"
	"path/filepath"
	"testing"

	"go.uber.org/goleak"
)

// The model is opened once for the package's tests: ONNX Runtime keeps one
// environment per process.
var (
	testModel   *Model
	testOpenErr error
)

// testDir is where scripts/silero-setup.sh installs the files.
func testDir() string {
	if d := os.Getenv("PARLEY_SILERO_DIR"); d != "" {
		return d
	}
	return "/usr/local/lib/parley/silero"
}

func TestMain(m *testing.M) {
	dir := testDir()
	testModel, testOpenErr = Open(Config{Library: filepath.Join(dir, "libonnxruntime.so.1"), Model: filepath.Join(dir, "silero_vad.onnx")})
	code := m.Run()
	if testModel != nil {
		if err := testModel.Close(); err != nil && code == 0 {
			println("close model:", err.Error())
			code = 1
		}
	}
	if code == 0 {
		if err := goleak.Find(); err != nil {
			println("goleak:", err.Error())
			code = 1
		}
	}
	os.Exit(code)
}

// model returns the shared model, or skips the test when ONNX Runtime and
// the model are not installed, unless PARLEY_REQUIRE_SILERO is set (CI).
func model(t testing.TB) *Model {
	t.Helper()
	if testOpenErr != nil {
		if os.Getenv("PARLEY_REQUIRE_SILERO") != "" {
			t.Fatalf("Silero VAD is required (PARLEY_REQUIRE_SILERO is set): %v", testOpenErr)
		}
		t.Skipf("Silero VAD not installed (scripts/silero-setup.sh): %v", testOpenErr)
	}
	return testModel
}
