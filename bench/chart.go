package main

// This file draws a rate scenario's chart with the standard library alone:
// no plotting module in go.mod for one picture. It has no text; the
// README's legend says what the colours and grid lines are.

import (
	"image"
	"image/color"
	"image/png"
	"math"
	"os"
	"time"
)

// Chart geometry and colours.
const (
	chartW, chartH = 900, 400
	chartMargin    = 20
)

var (
	colBackground = color.RGBA{255, 255, 255, 255}
	colGrid       = color.RGBA{225, 225, 225, 255}
	colAxis       = color.RGBA{60, 60, 60, 255}
	colQuota      = color.RGBA{220, 30, 30, 255} // red: the write quota
	colApplied    = color.RGBA{30, 90, 220, 255} // blue: applied writes per second
	colLimiter    = color.RGBA{20, 160, 60, 255} // green: the limiter's rate
)

// writeChart plots, against time since the worker started, the writes the
// simulator admitted per second (over a sliding second), the worker's
// write limiter rate, and the quota as a horizontal line. Grid: a vertical
// line every 5 s, a horizontal one every 10 writes/s.
func writeChart(path string, samples []sample, quota float64) error {
	img := image.NewRGBA(image.Rect(0, 0, chartW, chartH))
	for i := range img.Pix {
		img.Pix[i] = 255
	}
	if len(samples) < 2 {
		return savePNG(path, img)
	}
	span := samples[len(samples)-1].at.Seconds()
	top := quota * 1.5
	for _, s := range samples {
		top = math.Max(top, s.writeRate*1.1)
	}
	top = math.Ceil(top/10) * 10
	x := func(sec float64) int { return chartMargin + int(sec/span*float64(chartW-2*chartMargin)) }
	y := func(v float64) int { return chartH - chartMargin - int(v/top*float64(chartH-2*chartMargin)) }

	for s := 0.0; s <= span; s += 5 {
		line(img, x(s), y(0), x(s), y(top), colGrid)
	}
	for v := 0.0; v <= top; v += 10 {
		line(img, x(0), y(v), x(span), y(v), colGrid)
	}
	line(img, x(0), y(0), x(span), y(0), colAxis)
	line(img, x(0), y(0), x(0), y(top), colAxis)
	thick(img, x(0), y(quota), x(span), y(quota), colQuota)

	// Applied writes per second, over the second that ends at each sample.
	per := int(time.Second / samplePeriod)
	px, py := -1, -1
	for i := per; i < len(samples); i++ {
		a, b := samples[i-per], samples[i]
		rate := float64(b.admitted-a.admitted) / (b.at - a.at).Seconds()
		cx, cy := x(b.at.Seconds()), y(rate)
		if px >= 0 {
			thick(img, px, py, cx, cy, colApplied)
		}
		px, py = cx, cy
	}
	px = -1
	for _, s := range samples {
		cx, cy := x(s.at.Seconds()), y(s.writeRate)
		if px >= 0 {
			thick(img, px, py, cx, cy, colLimiter)
		}
		px, py = cx, cy
	}
	return savePNG(path, img)
}

func savePNG(path string, img image.Image) error {
	f, err := os.Create(path)
	if err != nil {
		return err
	}
	if err := png.Encode(f, img); err != nil {
		f.Close()
		return err
	}
	return f.Close()
}

// line draws a segment (Bresenham).
func line(img *image.RGBA, x0, y0, x1, y1 int, c color.RGBA) {
	dx, dy := abs(x1-x0), -abs(y1-y0)
	sx, sy := 1, 1
	if x0 > x1 {
		sx = -1
	}
	if y0 > y1 {
		sy = -1
	}
	e := dx + dy
	for {
		img.SetRGBA(x0, y0, c)
		if x0 == x1 && y0 == y1 {
			return
		}
		if e2 := 2 * e; e2 >= dy {
			e += dy
			x0 += sx
		} else {
			e += dx
			y0 += sy
		}
	}
}

// thick draws a segment two pixels wide.
func thick(img *image.RGBA, x0, y0, x1, y1 int, c color.RGBA) {
	line(img, x0, y0, x1, y1, c)
	line(img, x0, y0+1, x1, y1+1, c)
}

func abs(v int) int {
	if v < 0 {
		return -v
	}
	return v
}
