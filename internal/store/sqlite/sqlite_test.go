package sqlite_test

import (
	"testing"

	"github.com/parley-voice/parley/internal/store/storetest"
)

func TestStore(t *testing.T) { storetest.Run(t, storetest.OpenSQLite) }
