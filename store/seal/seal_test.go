package seal

import (
	"bytes"
	"errors"
	"strings"
	"testing"
)

const testKey = "5b0c7d2f4e8a91c3d6f0a2b4c6d8e0f1"

func TestSealRoundTripAndBinding(t *testing.T) {
	b, err := New(testKey)
	if err != nil {
		t.Fatal(err)
	}
	loc := PipelineLocation("default", "deploy", "api_key")
	sealed, err := b.Seal([]byte("s3cr3t-value"), loc)
	if err != nil {
		t.Fatal(err)
	}
	if bytes.Contains(sealed, []byte("s3cr3t-value")) {
		t.Fatal("sealed value contains the plaintext")
	}
	again, _ := b.Seal([]byte("s3cr3t-value"), loc)
	if bytes.Equal(sealed, again) {
		t.Fatal("two seals of one value are identical: the nonce is not random")
	}
	got, err := b.Open(sealed, loc)
	if err != nil || string(got) != "s3cr3t-value" {
		t.Fatalf("open = %q, %v", got, err)
	}
	if _, err := b.Open(sealed, PipelineLocation("default", "deploy", "other")); !errors.Is(err, ErrKeyMismatch) {
		t.Fatalf("open at another location: err = %v, want ErrKeyMismatch", err)
	}
	other, _ := New(strings.ToUpper(testKey))
	if _, err := other.Open(sealed, loc); !errors.Is(err, ErrKeyMismatch) {
		t.Fatalf("open with another key: err = %v, want ErrKeyMismatch", err)
	}
	if other.KeyCheck() == b.KeyCheck() {
		t.Fatal("different keys have the same key check")
	}
	if _, err := b.Open(sealed[:10], loc); err == nil {
		t.Fatal("a truncated value opened")
	}
}

func TestCheckKey(t *testing.T) {
	for _, tc := range []struct {
		key  string
		want string
	}{
		{"short", "at least 32"},
		{"changemechangemechangemechangeme", "well-known"},
		{"CHANGEMECHANGEMECHANGEMECHANGEME", "well-known"},
		{strings.Repeat("a", 40), "repeats one character"},
		{testKey, ""},
	} {
		err := CheckKey(tc.key)
		if tc.want == "" {
			if err != nil {
				t.Errorf("CheckKey(%q) = %v, want nil", tc.key, err)
			}
			continue
		}
		if err == nil || !strings.Contains(err.Error(), tc.want) {
			t.Errorf("CheckKey(%q) = %v, want an error containing %q", tc.key, err, tc.want)
		}
	}
}
