package seal

import (
	"errors"
	"testing"
)

const otherKey = "9f1e3d5c7b9a8f6e4d2c0b1a3f5e7d9c"

func TestKeyringOpensUnderEveryKeyAndSealsUnderTheNamedOne(t *testing.T) {
	oldBox, err := New(testKey)
	if err != nil {
		t.Fatal(err)
	}
	kr, err := NewKeyring(otherKey, testKey, otherKey)
	if err != nil {
		t.Fatal(err)
	}
	if got := kr.Checks(); len(got) != 2 || got[1] != oldBox.KeyCheck() {
		t.Fatalf("checks = %v, want [new, old] without the duplicate", got)
	}
	loc := GlobalLocation("api_key")
	sealedOld, _ := oldBox.Seal([]byte("value-one"), loc)
	plain, check, err := kr.OpenCheck(sealedOld, loc)
	if err != nil || string(plain) != "value-one" || check != oldBox.KeyCheck() {
		t.Fatalf("open old = %q, %s, %v", plain, check, err)
	}
	sealedNew, _ := kr.Primary().Seal([]byte("value-two"), loc)
	if _, err := oldBox.Open(sealedNew, loc); !errors.Is(err, ErrKeyMismatch) {
		t.Fatalf("the old key opened a value sealed under the new one: %v", err)
	}
	if plain, err := kr.Open(sealedNew, loc); err != nil || string(plain) != "value-two" {
		t.Fatalf("open new = %q, %v", plain, err)
	}
	onlyNew, _ := NewKeyring(otherKey)
	if _, err := onlyNew.Open(sealedOld, loc); !errors.Is(err, ErrKeyMismatch) {
		t.Fatalf("a keyring without the old key opened an old value: %v", err)
	}
	if kr.ForCheck("nope") != nil || kr.Has("nope") || !kr.Has(oldBox.KeyCheck()) {
		t.Fatal("ForCheck/Has disagree with the keys held")
	}
	if _, err := NewKeyring(otherKey, "short"); err == nil {
		t.Fatal("a short previous key was accepted")
	}
	if Digest(nil) != "" || Digest(sealedOld) == Digest(sealedNew) || len(Digest(sealedOld)) != 32 {
		t.Fatal("digest is not a per-value identifier")
	}
}
