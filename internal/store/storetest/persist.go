package storetest

var persistCases = []testCase{}
