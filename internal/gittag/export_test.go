package gittag

// GovernedWithin is Governed with another bound on the walk.
var GovernedWithin = governed
