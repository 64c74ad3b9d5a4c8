// Package bench generates load, runs the dashboard query suite and turns
// measurements into a capacity plan.
package bench
