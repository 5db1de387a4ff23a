// Package auth mints and verifies the user tokens of the API: JWTs signed
// with HS256 under the app's own secret, iss = app id, sub = user id, exp
// required.
package auth

import (
	"context"
	"crypto/rand"
	"crypto/subtle"
	"encoding/base64"
	"errors"
	"fmt"
	"time"

	"github.com/golang-jwt/jwt/v5"

	"github.com/switchboard-chat/switchboard/internal/chat"
)

// Leeway is the clock skew allowed on exp, nbf and iat.
const Leeway = 30 * time.Second

// MaxTTL bounds the lifetime of a minted token.
const MaxTTL = 30 * 24 * time.Hour

// NewSecret returns a fresh app secret: 256 bits from crypto/rand.
func NewSecret() string {
	b := make([]byte, 32)
	if _, err := rand.Read(b); err != nil {
		panic(err) // crypto/rand does not fail on supported platforms
	}
	return base64.RawURLEncoding.EncodeToString(b)
}

// NewAdminToken returns a fresh admin token.
func NewAdminToken() string { return "sb_admin_" + NewSecret() }

// AdminOK compares a presented admin token with the configured one in
// constant time.
func AdminOK(presented, want string) bool {
	return want != "" && subtle.ConstantTimeCompare([]byte(presented), []byte(want)) == 1
}

// Mint signs a token for user of app, valid for ttl.
func Mint(app chat.App, user string, ttl time.Duration, now time.Time) (string, error) {
	claims := jwt.RegisteredClaims{
		Issuer:    app.ID,
		Subject:   user,
		IssuedAt:  jwt.NewNumericDate(now),
		ExpiresAt: jwt.NewNumericDate(now.Add(ttl)),
	}
	return jwt.NewWithClaims(jwt.SigningMethodHS256, claims).SignedString([]byte(app.Secret))
}

// SecretFunc looks up an app's secret. For an unknown app it returns a
// *chat.Error with code NotFound, which Verify turns into a 401.
type SecretFunc func(ctx context.Context, app string) (string, error)

var parser = jwt.NewParser(
	jwt.WithValidMethods([]string{jwt.SigningMethodHS256.Alg()}),
	jwt.WithExpirationRequired(),
	jwt.WithLeeway(Leeway),
)

// Verify checks a token and returns the address it speaks for. Every
// failure is an *chat.Error with code Unauthenticated, except a failure of
// secret itself that is not about the app being unknown, which it returns
// as is (for example, the store being down).
func Verify(ctx context.Context, token string, secret SecretFunc) (chat.Address, error) {
	a, _, err := VerifyExpiry(ctx, token, secret)
	return a, err
}

// VerifyExpiry is Verify that also returns the token's expiry, so that a
// caller may cache the outcome until then.
func VerifyExpiry(ctx context.Context, token string, secret SecretFunc) (chat.Address, time.Time, error) {
	if token == "" {
		return "", time.Time{}, chat.Errorf(chat.Unauthenticated, "a bearer token is required: send Authorization: Bearer <token>")
	}
	var lookupErr error
	var claims jwt.RegisteredClaims
	_, err := parser.ParseWithClaims(token, &claims, func(t *jwt.Token) (any, error) {
		iss, _ := t.Claims.GetIssuer()
		if chat.ValidAppID(iss) != nil {
			return nil, errors.New("iss is not an app id")
		}
		s, err := secret(ctx, iss)
		if err != nil {
			lookupErr = err
			return nil, err
		}
		return []byte(s), nil
	})
	if lookupErr != nil {
		if chat.ErrorCode(lookupErr) != chat.NotFound {
			return "", time.Time{}, lookupErr
		}
		return "", time.Time{}, chat.Errorf(chat.Unauthenticated, "the token's issuer is not a known app")
	}
	if err != nil {
		return "", time.Time{}, chat.Errorf(chat.Unauthenticated, "invalid token: %s", reason(err))
	}
	if err := chat.ValidUserID(claims.Subject); err != nil {
		return "", time.Time{}, chat.Errorf(chat.Unauthenticated, "invalid token: sub is not a user id")
	}
	return chat.NewAddress(claims.Issuer, claims.Subject), claims.ExpiresAt.Time, nil
}

func reason(err error) string {
	switch {
	case errors.Is(err, jwt.ErrTokenExpired):
		return "it has expired; ask the app for a new one"
	case errors.Is(err, jwt.ErrTokenRequiredClaimMissing):
		return "it has no exp claim"
	case errors.Is(err, jwt.ErrTokenSignatureInvalid):
		return "the signature does not match the app's secret"
	case errors.Is(err, jwt.ErrTokenUnverifiable):
		return "only HS256 tokens are accepted"
	case errors.Is(err, jwt.ErrTokenMalformed):
		return "it is not a well-formed JWT"
	case errors.Is(err, jwt.ErrTokenNotValidYet), errors.Is(err, jwt.ErrTokenUsedBeforeIssued):
		return "it is not valid yet"
	}
	return fmt.Sprint(err)
}
