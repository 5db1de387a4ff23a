package chat

import "strings"

// Address names a user globally: "app:user".
type Address string

// NewAddress joins an app id and a user id. It does not validate.
func NewAddress(app, user string) Address { return Address(app + ":" + user) }

// App is the app part of the address.
func (a Address) App() string {
	app, _, _ := strings.Cut(string(a), ":")
	return app
}

// User is the user part of the address.
func (a Address) User() string {
	_, user, _ := strings.Cut(string(a), ":")
	return user
}

// ParseAddress checks s against the address grammar: app ids
// [a-z0-9-]{1,32}, user ids [A-Za-z0-9._-]{1,64}.
func ParseAddress(s string) (Address, error) {
	app, user, ok := strings.Cut(s, ":")
	if !ok {
		return "", Errorf(InvalidArgument, "address %q is not of the form app:user", s)
	}
	if err := ValidAppID(app); err != nil {
		return "", Errorf(InvalidArgument, "address %q: %s", s, err.(*Error).Message)
	}
	if err := ValidUserID(user); err != nil {
		return "", Errorf(InvalidArgument, "address %q: %s", s, err.(*Error).Message)
	}
	return Address(s), nil
}

// ValidAppID checks an app id: [a-z0-9-]{1,32}.
func ValidAppID(id string) error {
	if len(id) < 1 || len(id) > 32 {
		return Errorf(InvalidArgument, "app id %q must be 1 to 32 characters", id)
	}
	for i := 0; i < len(id); i++ {
		c := id[i]
		if !(c >= 'a' && c <= 'z' || c >= '0' && c <= '9' || c == '-') {
			return Errorf(InvalidArgument, "app id %q may hold only a-z, 0-9 and -", id)
		}
	}
	return nil
}

// ValidUserID checks a user id: [A-Za-z0-9._-]{1,64}.
func ValidUserID(id string) error {
	if len(id) < 1 || len(id) > 64 {
		return Errorf(InvalidArgument, "user id %q must be 1 to 64 characters", id)
	}
	for i := 0; i < len(id); i++ {
		c := id[i]
		if !(c >= 'a' && c <= 'z' || c >= 'A' && c <= 'Z' || c >= '0' && c <= '9' || c == '.' || c == '_' || c == '-') {
			return Errorf(InvalidArgument, "user id %q may hold only A-Z, a-z, 0-9, '.', '_' and '-'", id)
		}
	}
	return nil
}
