package storetest

var concurrentCases = []testCase{}
