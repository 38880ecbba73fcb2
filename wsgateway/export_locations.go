package wsgateway

import (
	"bufio"
	"encoding/csv"
	"encoding/json"
	"encoding/xml"
	"net/http"
	"strconv"
	"strings"
	"time"

	"github.com/devtrack/devtrack/storage"
)

// exportLocations serves GET /api/v1/devices/{id}/locations/export
// ?format=gpx|geojson|csv&from=&to=: every position of the range, oldest
// first, as a download. The whole range is read before the first byte is
// written (the store pages newest first; see track), so a range that is too
// wide still gets a proper 400.
func (g *Gateway) exportLocations(w http.ResponseWriter, r *http.Request, u storage.User) error {
	id := r.PathValue("id")
	d, err := g.visibleDevice(r.Context(), u, id)
	if err != nil {
		return err
	}
	format := r.URL.Query().Get("format")
	if format == "" {
		format = "gpx"
	}
	write, ok := map[string]func(*bufio.Writer, storage.Device, []storage.Location) error{
		"gpx": writeGPX, "geojson": writeGeoJSON, "csv": writeLocationsCSV,
	}[format]
	if !ok {
		return badRequest("format must be gpx, geojson or csv")
	}
	from, to, err := timeRange(r)
	if err != nil {
		return err
	}
	locs, err := g.track(r.Context(), id, from, to)
	if err != nil {
		return err
	}
	ctype := map[string]string{
		"gpx": "application/gpx+xml", "geojson": "application/geo+json", "csv": "text/csv; charset=utf-8",
	}[format]
	name := "devtrack-" + fileSafe(id) + "-" + time.Now().UTC().Format("20060102-150405") + "." + format
	w.Header().Set("Content-Type", ctype)
	w.Header().Set("Content-Disposition", `attachment; filename="`+name+`"`)
	w.Header().Set("X-Content-Type-Options", "nosniff")
	bw := bufio.NewWriterSize(w, 64<<10)
	if err := write(bw, d, locs); err != nil {
		return nil // headers are sent; the client went away
	}
	_ = bw.Flush()
	return nil
}

// fileSafe keeps a device id's letters, digits, '.', '_' and '-' for a file
// name in a header; anything else becomes '_'.
func fileSafe(s string) string {
	return strings.Map(func(r rune) rune {
		switch {
		case r >= 'a' && r <= 'z', r >= 'A' && r <= 'Z', r >= '0' && r <= '9', r == '.', r == '_', r == '-':
			return r
		}
		return '_'
	}, s)
}

func num(f float64) string { return strconv.FormatFloat(f, 'f', -1, 64) }

func rfc3339(ms int64) string { return time.UnixMilli(ms).UTC().Format(time.RFC3339Nano) }

// gpxPoint is a GPX 1.1 trkpt (wptType): ele and time are the only
// children GPX has for what devtrack stores; the full record is in the CSV.
type gpxPoint struct {
	XMLName xml.Name `xml:"trkpt"`
	Lat     string   `xml:"lat,attr"`
	Lon     string   `xml:"lon,attr"`
	Ele     string   `xml:"ele,omitempty"`
	Time    string   `xml:"time"`
}

// writeGPX writes a GPX 1.1 document with one track of one segment.
func writeGPX(w *bufio.Writer, d storage.Device, locs []storage.Location) error {
	name := d.Name
	if name == "" {
		name = d.ID
	}
	var esc strings.Builder
	_ = xml.EscapeText(&esc, []byte(name))
	_, _ = w.WriteString(xml.Header + `<gpx version="1.1" creator="devtrack" xmlns="http://www.topografix.com/GPX/1/1">` + "\n" +
		`<metadata><name>` + esc.String() + `</name><time>` + time.Now().UTC().Format(time.RFC3339) + `</time></metadata>` + "\n" +
		`<trk><name>` + esc.String() + `</name><trkseg>` + "\n")
	enc := xml.NewEncoder(w)
	for i, l := range locs {
		p := gpxPoint{Lat: num(l.Lat), Lon: num(l.Lng), Time: rfc3339(l.TS)}
		if l.Altitude != nil {
			p.Ele = num(*l.Altitude)
		}
		if err := enc.Encode(p); err != nil {
			return err
		}
		_ = w.WriteByte('\n')
		if i%1000 == 999 {
			if err := w.Flush(); err != nil {
				return err
			}
		}
	}
	_, err := w.WriteString("</trkseg></trk>\n</gpx>\n")
	return err
}

// writeGeoJSON writes a FeatureCollection with one LineString of the track
// (a Point when it has one position, nothing when none) whose times are in
// properties.coordinateProperties.times, the convention of Mapbox's
// togeojson that tools such as geojson.io read back.
func writeGeoJSON(w *bufio.Writer, d storage.Device, locs []storage.Location) error {
	devJSON, _ := json.Marshal(d.ID)
	nameJSON, _ := json.Marshal(d.Name)
	_, _ = w.WriteString(`{"type":"FeatureCollection","features":[`)
	if len(locs) > 0 {
		kind := "LineString"
		if len(locs) == 1 {
			kind = "Point"
		}
		_, _ = w.WriteString(`{"type":"Feature","properties":{"device":` + string(devJSON) + `,"name":` + string(nameJSON) +
			`,"points":` + strconv.Itoa(len(locs)) + `,"coordinateProperties":{"times":[`)
		for i, l := range locs {
			if i > 0 {
				_ = w.WriteByte(',')
			}
			_, _ = w.WriteString(`"` + rfc3339(l.TS) + `"`)
		}
		_, _ = w.WriteString(`]}},"geometry":{"type":"` + kind + `","coordinates":`)
		if kind == "Point" {
			_, _ = w.WriteString(`[` + num(locs[0].Lng) + `,` + num(locs[0].Lat) + `]`)
		} else {
			_ = w.WriteByte('[')
			for i, l := range locs {
				if i > 0 {
					_ = w.WriteByte(',')
				}
				_, _ = w.WriteString(`[` + num(l.Lng) + `,` + num(l.Lat) + `]`)
				if i%1000 == 999 {
					if err := w.Flush(); err != nil {
						return err
					}
				}
			}
			_ = w.WriteByte(']')
		}
		_, _ = w.WriteString(`}}`)
	}
	_, err := w.WriteString("]}\n")
	return err
}

// writeLocationsCSV writes a header and one row per position. The text
// cells (device, id, crs) go through csvCell against formula injection; the
// numbers are formatted here and stay numbers (a negative latitude is not a
// formula, and a quote would make it text).
func writeLocationsCSV(w *bufio.Writer, _ storage.Device, locs []storage.Location) error {
	cw := csv.NewWriter(w)
	opt := func(f *float64) string {
		if f == nil {
			return ""
		}
		return num(*f)
	}
	_ = cw.Write([]string{"device", "id", "ts", "received_at", "lat", "lng", "accuracy", "speed", "heading", "altitude", "crs"})
	for i, l := range locs {
		_ = cw.Write([]string{csvCell(l.Device), csvCell(l.ID), rfc3339(l.TS), rfc3339(l.ReceivedAt),
			num(l.Lat), num(l.Lng), opt(l.Accuracy), opt(l.Speed), opt(l.Heading), opt(l.Altitude), csvCell(l.CRS)})
		if i%1000 == 999 {
			cw.Flush()
			if err := cw.Error(); err != nil {
				return err
			}
		}
	}
	cw.Flush()
	return cw.Error()
}
