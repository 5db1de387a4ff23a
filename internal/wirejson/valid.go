package wirejson

// maxDepth is encoding/json's limit on nesting, which Valid keeps too.
const maxDepth = 10000

// Valid reports whether s is one valid JSON value, surrounded by spaces at
// most: exactly what encoding/json's Valid reports (invalid UTF-8 inside a
// string is accepted, as there), in one pass without a state function per
// byte.
func Valid(s string) bool {
	var small [32]byte
	open := small[:0] // the '{' and '[' not yet closed
	i := skipSpace(s, 0)
	for {
		// A value starts at s[i].
		if i >= len(s) {
			return false
		}
		switch c := s[i]; {
		case c == '{' || c == '[':
			if len(open) == maxDepth {
				return false
			}
			open = append(open, c)
			i = skipSpace(s, i+1)
			if i < len(s) && s[i] == c+2 { // '}' and ']' are 2 past '{' and '['
				open = open[:len(open)-1]
				i++
				break
			}
			if c == '{' {
				if i = key(s, i); i < 0 {
					return false
				}
			}
			continue
		case c == '"':
			if i = str(s, i); i < 0 {
				return false
			}
		case c == '-' || c >= '0' && c <= '9':
			if i = number(s, i); i < 0 {
				return false
			}
		case c == 't':
			if i = literal(s, i, "true"); i < 0 {
				return false
			}
		case c == 'f':
			if i = literal(s, i, "false"); i < 0 {
				return false
			}
		case c == 'n':
			if i = literal(s, i, "null"); i < 0 {
				return false
			}
		default:
			return false
		}
		// A value ended before s[i]: close containers, or go to the next
		// element.
		for {
			i = skipSpace(s, i)
			if len(open) == 0 {
				return i == len(s)
			}
			if i >= len(s) {
				return false
			}
			top := open[len(open)-1]
			if s[i] == top+2 {
				open = open[:len(open)-1]
				i++
				continue
			}
			if s[i] != ',' {
				return false
			}
			i = skipSpace(s, i+1)
			if top == '{' {
				if i = key(s, i); i < 0 {
					return false
				}
			}
			break
		}
	}
}

// key checks a member's key and colon at s[i] and returns the index of its
// value, or -1.
func key(s string, i int) int {
	if i >= len(s) || s[i] != '"' {
		return -1
	}
	if i = str(s, i); i < 0 {
		return -1
	}
	i = skipSpace(s, i)
	if i >= len(s) || s[i] != ':' {
		return -1
	}
	return skipSpace(s, i+1)
}

// str checks the string at s[i] == '"' and returns the index after it, or -1.
func str(s string, i int) int {
	for i++; i < len(s); i++ {
		switch c := s[i]; {
		case c == '"':
			return i + 1
		case c < 0x20:
			return -1
		case c == '\\':
			i++
			if i >= len(s) {
				return -1
			}
			switch s[i] {
			case '"', '\\', '/', 'b', 'f', 'n', 'r', 't':
			case 'u':
				if i+4 >= len(s) {
					return -1
				}
				for _, h := range []byte(s[i+1 : i+5]) {
					if !(h >= '0' && h <= '9' || h >= 'a' && h <= 'f' || h >= 'A' && h <= 'F') {
						return -1
					}
				}
				i += 4
			default:
				return -1
			}
		}
	}
	return -1
}

// number checks the number at s[i] and returns the index after it, or -1.
func number(s string, i int) int {
	if s[i] == '-' {
		i++
	}
	switch {
	case i < len(s) && s[i] == '0':
		i++
	case i < len(s) && s[i] >= '1' && s[i] <= '9':
		i = digits(s, i)
	default:
		return -1
	}
	if i < len(s) && s[i] == '.' {
		if j := digits(s, i+1); j > i+1 {
			i = j
		} else {
			return -1
		}
	}
	if i < len(s) && (s[i] == 'e' || s[i] == 'E') {
		i++
		if i < len(s) && (s[i] == '+' || s[i] == '-') {
			i++
		}
		j := digits(s, i)
		if j == i {
			return -1
		}
		i = j
	}
	return i
}

func digits(s string, i int) int {
	for i < len(s) && s[i] >= '0' && s[i] <= '9' {
		i++
	}
	return i
}

// literal checks that word is at s[i] and returns the index after it, or -1.
func literal(s string, i int, word string) int {
	if len(s)-i < len(word) || s[i:i+len(word)] != word {
		return -1
	}
	return i + len(word)
}
